package store

import (
	"embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The Lua sources. Every script is contract.lua (the request decoding and
// the reply codes, see contract.go), then the library modules it uses, in
// this order, then its own code. A module is only in the scripts that call
// it: lead_expire carries the placement helpers but no pick.
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
	// error messages: part i starts at body line parts[i].from.
	parts []scriptPart
	body  string
}

type scriptPart struct {
	file string
	from int // first line of the part in the body (1-based)
}

func source(name string) string {
	b, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(err) // a missing embedded file is a build mistake
	}
	return string(b)
}

// newScript assembles contract.lua, the modules and the script's own file.
func newScript(name string, modules ...module) *script {
	sc := &script{name: name, lib: len(modules) > 0}
	var body strings.Builder
	line := 1
	add := func(file, text string) {
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		sc.parts = append(sc.parts, scriptPart{file: file, from: line})
		body.WriteString(text)
		line += strings.Count(text, "\n")
	}
	add("contract.lua", source("contract"))
	for _, m := range modules {
		add(string(m)+".lua", source(string(m)))
	}
	if sc.lib {
		add("", "local function main()\n")
		add(name+".lua", source(name))
		add("", "end\nreturn with_facts(main())\n")
	} else {
		add(name+".lua", source(name))
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
			return fmt.Sprintf("%s:%d", p.file, line-p.from+1)
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
	assignmentClose = newScript("assignment_close", modWorkspace, modIndex)
	offerAccept     = newScript("offer_accept", modWorkspace)
	leadContact     = newScript("lead_contact", modWorkspace)
	configChunk     = newScript("config_chunk", modWorkspace, modIndex)
	repSetStatus    = newScript("rep_set_status", modWorkspace, modIndex)
	repConnection   = newScript("rep_connection", modWorkspace, modIndex)
	poolIndex       = newScript("pool_index", modWorkspace, modIndex)
	configBegin     = newScript("config_begin")
	configCommit    = newScript("config_commit")
	configLease     = newScript("config_lease")
	timerDrop       = newScript("timer_drop")
	eventsTrim      = newScript("events_trim")
)

// allScripts lists every script (for tests).
var allScripts = []*script{leadDecide, leadEscalate, queueDrain, leadReroute, leadExpire, assignmentClose,
	offerAccept, leadContact, configChunk, repSetStatus, repConnection, poolIndex, configBegin, configCommit,
	configLease, timerDrop, eventsTrim}
