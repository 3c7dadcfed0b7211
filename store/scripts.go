package store

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// Every script that routes leads is prefixed with lib_routing.lua, so a
// pick is the same code wherever a lead is placed.
var (
	//go:embed lua/lib_routing.lua
	libRouting string
	//go:embed lua/lead_decide.lua
	leadDecideSrc string
	//go:embed lua/lead_escalate.lua
	leadEscalateSrc string
	//go:embed lua/lead_expire.lua
	leadExpireSrc string
	//go:embed lua/queue_drain.lua
	queueDrainSrc string
	//go:embed lua/assignment_close.lua
	assignmentCloseSrc string
	//go:embed lua/offer_accept.lua
	offerAcceptSrc string
	//go:embed lua/lead_reroute.lua
	leadRerouteSrc string
	//go:embed lua/lead_contact.lua
	leadContactSrc string
	//go:embed lua/config_begin.lua
	configBeginSrc string
	//go:embed lua/config_chunk.lua
	configChunkSrc string
	//go:embed lua/config_commit.lua
	configCommitSrc string
	//go:embed lua/config_lease.lua
	configLeaseSrc string
	//go:embed lua/rep_set_status.lua
	repSetStatusSrc string
	//go:embed lua/timer_drop.lua
	timerDropSrc string
	//go:embed lua/events_trim.lua
	eventsTrimSrc string
	//go:embed lua/rep_connection.lua
	repConnectionSrc string
	//go:embed lua/pool_index.lua
	poolIndexSrc string
)

// script is one Lua script with the name its errors and metrics use.
// Routing scripts (lib) run inside a function whose reply gets the facts
// the call produced appended (see FACTS in lib_routing.lua):
// {reply..., kind, pool, ms, ... (n times), n}. Store.run strips them.
type script struct {
	*redis.Script
	name string
	lib  bool
}

func withLib(name, src string) *script {
	body := libRouting + "\nlocal function main()\n" + src + "\nend\nreturn with_facts(main())\n"
	return &script{Script: redis.NewScript(body), name: name, lib: true}
}

func plain(name, src string) *script {
	return &script{Script: redis.NewScript(src), name: name}
}

var (
	leadDecide      = withLib("lead_decide", leadDecideSrc)
	leadEscalate    = withLib("lead_escalate", leadEscalateSrc)
	leadExpire      = withLib("lead_expire", leadExpireSrc)
	queueDrain      = withLib("queue_drain", queueDrainSrc)
	assignmentClose = withLib("assignment_close", assignmentCloseSrc)
	offerAccept     = withLib("offer_accept", offerAcceptSrc)
	leadReroute     = withLib("lead_reroute", leadRerouteSrc)
	leadContact     = withLib("lead_contact", leadContactSrc)
	configBegin     = plain("config_begin", configBeginSrc)
	configChunk     = withLib("config_chunk", configChunkSrc)
	configCommit    = plain("config_commit", configCommitSrc)
	configLease     = plain("config_lease", configLeaseSrc)
	repSetStatus    = withLib("rep_set_status", repSetStatusSrc)
	timerDrop       = plain("timer_drop", timerDropSrc)
	eventsTrim      = plain("events_trim", eventsTrimSrc)
	repConnection   = withLib("rep_connection", repConnectionSrc)
	poolIndex       = withLib("pool_index", poolIndexSrc)
)
