package main

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeTour walks the README's five-minute tour: every leadctl
// command of its console and sh blocks runs, in order, against a server
// on the embedded store with the sample config (what `make run` serves).
// A step shown succeeding must succeed, and its first output line must
// start as shown (lead, state, rep); a step shown failing must fail with
// the message shown. The streaming commands (watch, events) are left out.
// So a tour step that cannot succeed fails CI.
func TestReadmeTour(t *testing.T) {
	body, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	tour := string(body)
	start := strings.Index(tour, "## A five-minute tour")
	if start < 0 {
		t.Fatal("the README has no five-minute tour")
	}
	tour = tour[start+3:]
	if end := strings.Index(tour, "\n## "); end >= 0 {
		tour = tour[:end]
	}
	steps := tourSteps(tour)
	if len(steps) < 10 {
		t.Fatalf("only %d tour steps found", len(steps))
	}
	addr := serve(t)
	mustRun(t, addr, "apply", "-f", "../../examples/routing.yaml")
	for _, s := range steps {
		for i, a := range s.args { // the README's paths are from the repository's root
			if strings.HasPrefix(a, "examples/") {
				s.args[i] = "../../" + a
			}
		}
		out, err := leadctl(t, addr, s.args...)
		switch {
		case s.fails != "":
			if err == nil || !strings.Contains(err.Error(), s.fails) {
				t.Errorf("leadctl %s: %v, the README shows it failing with %q", strings.Join(s.args, " "), err, s.fails)
			}
		case err != nil:
			t.Errorf("leadctl %s: %v\n%s", strings.Join(s.args, " "), err, out)
		case s.first != "":
			want := strings.Fields(s.first)
			got := strings.Fields(strings.SplitN(out, "\n", 2)[0])
			if len(want) > 3 {
				want = want[:3]
			}
			if len(got) < len(want) || strings.Join(got[:len(want)], " ") != strings.Join(want, " ") {
				t.Errorf("leadctl %s printed %q first, the README shows %q", strings.Join(s.args, " "), strings.SplitN(out, "\n", 2)[0], s.first)
			}
		}
	}
	t.Logf("%d tour steps", len(steps))
}

// tourStep is one leadctl command of the tour, with what the README shows
// it printing: its first output line, or (fails) the error's message.
type tourStep struct {
	args         []string
	first, fails string
}

// tourSteps reads the leadctl commands of a README section's console
// blocks ("$ leadctl ...", then its output) and sh blocks ("leadctl ...",
// several per line after ';', a '#' comment after).
func tourSteps(section string) []tourStep {
	var steps []tourStep
	block := ""
	for _, line := range strings.Split(section, "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			if block == "" {
				block = strings.TrimPrefix(line, "```")
			} else {
				block = ""
			}
			continue
		case block == "console" && strings.HasPrefix(line, "$ leadctl "):
			steps = append(steps, tourStep{args: shellWords(strings.TrimPrefix(line, "$ leadctl "))})
		case block == "console" && len(steps) > 0 && !strings.HasPrefix(line, "$"):
			last := &steps[len(steps)-1]
			if last.first == "" && last.fails == "" && strings.TrimSpace(line) != "" && !strings.HasPrefix(strings.TrimSpace(line), "...") {
				if msg, ok := strings.CutPrefix(line, "leadctl: "); ok {
					_, last.fails, _ = strings.Cut(msg, ": ")
				} else {
					last.first = line
				}
			}
		case block == "sh":
			cmd, _, _ := strings.Cut(line, "#")
			for _, c := range strings.Split(cmd, ";") {
				if c = strings.TrimSpace(c); strings.HasPrefix(c, "leadctl ") {
					steps = append(steps, tourStep{args: shellWords(strings.TrimPrefix(c, "leadctl "))})
				}
			}
		}
	}
	out := steps[:0]
	for _, s := range steps {
		if len(s.args) > 0 && s.args[0] != "watch" && s.args[0] != "events" {
			out = append(out, s)
		}
	}
	return out
}

// shellWords splits a command line into words, with double quotes.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	quoted, in := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, in = !quoted, true
		case r == ' ' && !quoted:
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}
