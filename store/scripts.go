package store

import (
	"embed"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The Lua sources. Every script is contract.lua (the request decoding and
// the reply codes, see contract.go), then the library modules it uses, in
// this order, then its own code. Of the modules a script takes only the
// functions it calls (newScript): lead_expire carries two placement helpers
// and no pick, lead_decide no withdrawal.
//
//go:embed lua/*.lua
var luaFiles embed.FS

// module is one library file; modules depend only on those before them.
type module string

const (
	modWorkspace   module = "lib_workspace"   // K, the clock, the config check, events, facts, history
	modIndex       module = "lib_index"       // the eligible-member index and ranked scores
	modEligibility module = "lib_eligibility" // whether a rep may take a lead; the counts an assignment changes
	modPlace       module = "lib_place"       // offers, assignments, queues and their timers
	modPick        module = "lib_pick"        // picks under each strategy; routing over targets
	modSink        module = "lib_sink"        // a sink's consumer group and its order per lead (on its own)
)

// routing is every module: the scripts that decide where a lead goes.
var routing = []module{modWorkspace, modIndex, modEligibility, modPlace, modPick}

// script is one Lua script with the name its errors and metrics use.
// Scripts built on lib_workspace (lib) run inside a function whose reply
// gets the facts the call produced appended (see FACTS in
// lib_workspace.lua): {code, value..., kind, pool, ms, ... (n times), n}.
// Store.run strips them.
type script struct {
	*redis.Script
	name string
	lib  bool
	// parts maps the body's lines back to the files they came from, for
	// error messages.
	parts []scriptPart
	body  string
}

// scriptPart is a run of the body's lines taken from one file: body line
// from is line fileLine of file ("" for the wrapper around a script).
type scriptPart struct {
	file     string
	from     int
	fileLine int
}

func source(name string) string {
	b, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(err) // a missing embedded file is a build mistake
	}
	return string(b)
}

// block is one top-level statement of a module, with the comment lines
// right above it: a local function (fn is its name) or anything else (fn
// is "").
type block struct {
	fn   string
	text string
	line int // its first line in the module (1-based)
}

var topFunction = regexp.MustCompile(`^local function ([A-Za-z_][A-Za-z0-9_]*)\(`)

// blocks splits a module at its top-level local statements (those at the
// start of a line). What precedes the first one (the module's header
// comment) is a block of its own.
func blocks(src string) []block {
	lines := strings.SplitAfter(src, "\n")
	var starts []int
	for i, l := range lines {
		if strings.HasPrefix(l, "local ") {
			b := i // its comment lines come with it
			for b > 0 && strings.HasPrefix(lines[b-1], "--") && (len(starts) == 0 || b-1 > starts[len(starts)-1]) {
				b--
			}
			starts = append(starts, b)
		}
	}
	if len(starts) == 0 || starts[0] > 0 {
		starts = append([]int{0}, starts...)
	}
	out := make([]block, len(starts))
	for i, from := range starts {
		to := len(lines)
		if i+1 < len(starts) {
			to = starts[i+1]
		}
		text := strings.Join(lines[from:to], "")
		out[i] = block{text: text, line: from + 1}
		for _, l := range lines[from:to] {
			if m := topFunction.FindStringSubmatch(l); m != nil {
				out[i].fn = m[1]
				break
			}
		}
	}
	return out
}

var identifier = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

// names adds the identifiers of Lua code, comments left out, to set.
func names(code string, set map[string]bool) {
	for _, l := range strings.Split(code, "\n") {
		if i := strings.Index(l, "--"); i >= 0 {
			l = l[:i]
		}
		for _, n := range identifier.FindAllString(l, -1) {
			set[n] = true
		}
	}
}

// newScript assembles contract.lua, the module functions the script needs
// and the script's own file. Of each module it takes every statement that
// is not a function, and each function the script's code names, or a
// function it takes names: a script carries only the functions it uses.
func newScript(name string, modules ...module) *script {
	sc := &script{name: name, lib: slices.Contains(modules, modWorkspace)}
	own := source(name)
	var wrapHead, wrapTail string
	if sc.lib {
		wrapHead, wrapTail = "local function main()\n", "end\nreturn with_facts(main())\n"
	}
	mods := make([][]block, len(modules))
	need := map[string]bool{}
	names(own+wrapTail, need)
	for i, m := range modules {
		mods[i] = blocks(source(string(m)))
		for _, b := range mods[i] {
			if b.fn == "" {
				names(b.text, need)
			}
		}
	}
	for grew := true; grew; {
		grew = false
		for _, bs := range mods {
			for _, b := range bs {
				if b.fn != "" && need[b.fn] && !need["\x00"+b.fn] {
					need["\x00"+b.fn] = true // its own names are in
					names(b.text, need)
					grew = true
				}
			}
		}
	}
	var body strings.Builder
	line := 1
	add := func(file, text string, fileLine int) {
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		sc.parts = append(sc.parts, scriptPart{file: file, from: line, fileLine: fileLine})
		body.WriteString(text)
		line += strings.Count(text, "\n")
	}
	add("contract.lua", source("contract"), 1)
	for i, m := range modules {
		for _, b := range mods[i] {
			if b.fn == "" || need[b.fn] {
				add(string(m)+".lua", b.text, b.line)
			}
		}
	}
	if sc.lib {
		add("", wrapHead, 1)
		add(name+".lua", own, 1)
		add("", wrapTail, 1)
	} else {
		add(name+".lua", own, 1)
	}
	sc.body = body.String()
	sc.Script = redis.NewScript(sc.body)
	return sc
}

// scriptLine matches the body line numbers in script errors: Redis's
// ("user_script:123:", "@user_script:123.") and the embedded store's (" :123:").
var scriptLine = regexp.MustCompile(`(user_script|\s):(\d+)`)

// where maps a line of the assembled body to "file.lua:line".
func (sc *script) where(line int) string {
	for i := len(sc.parts) - 1; i >= 0; i-- {
		if p := sc.parts[i]; line >= p.from {
			if p.file == "" {
				return sc.name + " (wrapper)"
			}
			return fmt.Sprintf("%s:%d", p.file, line-p.from+p.fileLine)
		}
	}
	return strconv.Itoa(line)
}

// scriptError is a Redis error from a script with its body line numbers
// replaced by the file and line they come from. It unwraps to the error
// Redis returned, so its class (redis.Error, retryable prefixes) is kept.
type scriptError struct {
	err error
	msg string
}

func (e *scriptError) Error() string { return e.msg }
func (e *scriptError) Unwrap() error { return e.err }

// located returns err with its script line numbers mapped (err itself when
// it names none).
func (sc *script) located(err error) error {
	msg := err.Error()
	if !scriptLine.MatchString(msg) {
		return err
	}
	msg = scriptLine.ReplaceAllStringFunc(msg, func(m string) string {
		prefix, num, _ := strings.Cut(m, ":")
		n, _ := strconv.Atoi(num)
		if prefix == "user_script" {
			prefix = ""
		}
		return prefix + sc.where(n)
	})
	return &scriptError{err: err, msg: msg}
}

var (
	leadDecide      = newScript("lead_decide", routing...)
	leadEscalate    = newScript("lead_escalate", routing...)
	queueDrain      = newScript("queue_drain", routing...)
	leadReroute     = newScript("lead_reroute", routing...)
	leadExpire      = newScript("lead_expire", modWorkspace, modPlace)
	leadRemove      = newScript("lead_remove", modWorkspace, modPlace)
	assignmentClose = newScript("assignment_close", modWorkspace, modIndex)
	offerAccept     = newScript("offer_accept", modWorkspace)
	leadContact     = newScript("lead_contact", modWorkspace)
	configChunk     = newScript("config_chunk", modWorkspace, modIndex)
	repSetStatus    = newScript("rep_set_status", modWorkspace, modIndex)
	repConnection   = newScript("rep_connection", modWorkspace, modIndex)
	poolIndex       = newScript("pool_index", modWorkspace, modIndex)
	repShift        = newScript("rep_shift", modWorkspace, modIndex)
	configBegin     = newScript("config_begin")
	configCommit    = newScript("config_commit")
	configLease     = newScript("config_lease")
	timerDrop       = newScript("timer_drop")
	timersClaim     = newScript("timers_claim")
	timerRetry      = newScript("timer_retry")
	timersPrune     = newScript("timers_prune")
	eventsTrim      = newScript("events_trim", modSink)
	recordsCounted  = newScript("records_counted")
	peopleBackfill  = newScript("people_backfill")
	leadErase       = newScript("lead_erase", modWorkspace, modIndex, modEligibility)
	sinkRead        = newScript("sink_read", modSink)
	sinkAck         = newScript("sink_ack", modSink)
	sinkClaim       = newScript("sink_claim", modSink)
	sinkTouch       = newScript("sink_touch")
	sinkReplay      = newScript("sink_replay")
	sinkReplayTake  = newScript("sink_replay_take")
	sinkReplayDone  = newScript("sink_replay_done", modSink)
	sinkRemove      = newScript("sink_remove")
	sinkStatus      = newScript("sink_status")
)

// allScripts lists every script (for tests).
var allScripts = []*script{leadDecide, leadEscalate, queueDrain, leadReroute, leadExpire, leadRemove, assignmentClose,
	offerAccept, leadContact, configChunk, repSetStatus, repConnection, poolIndex, repShift, configBegin, configCommit,
	configLease, timerDrop, timersClaim, timerRetry, timersPrune, eventsTrim, recordsCounted, sinkRead, sinkAck, sinkClaim,
	sinkTouch, sinkReplay, sinkReplayTake, sinkReplayDone, sinkRemove, sinkStatus}
