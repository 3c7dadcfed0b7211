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
	//go:embed lua/config_apply.lua
	configApplySrc string
	//go:embed lua/rep_set_status.lua
	repSetStatusSrc string
	//go:embed lua/timer_drop.lua
	timerDropSrc string
	//go:embed lua/events_trim.lua
	eventsTrimSrc string
	//go:embed lua/rep_connection.lua
	repConnectionSrc string
)

func withLib(src string) *redis.Script { return redis.NewScript(libRouting + "\n" + src) }

var (
	leadDecide      = withLib(leadDecideSrc)
	leadEscalate    = withLib(leadEscalateSrc)
	leadExpire      = withLib(leadExpireSrc)
	queueDrain      = withLib(queueDrainSrc)
	assignmentClose = withLib(assignmentCloseSrc)
	offerAccept     = withLib(offerAcceptSrc)
	leadReroute     = withLib(leadRerouteSrc)
	leadContact     = withLib(leadContactSrc)
	configApply     = withLib(configApplySrc)
	repSetStatus    = redis.NewScript(repSetStatusSrc)
	timerDrop       = redis.NewScript(timerDropSrc)
	eventsTrim      = redis.NewScript(eventsTrimSrc)
	repConnection   = redis.NewScript(repConnectionSrc)
)
