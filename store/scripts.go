package store

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// The shared rotation functions are prepended to each script that picks a
// rep, so the pick is the same code wherever a lead is placed.
var (
	//go:embed lua/lib_rotation.lua
	libRotation string
	//go:embed lua/lead_decide.lua
	leadDecideSrc string
	//go:embed lua/queue_drain.lua
	queueDrainSrc string
	//go:embed lua/config_apply.lua
	configApplySrc string
	//go:embed lua/rep_set_status.lua
	repSetStatusSrc string
)

var (
	leadDecide   = redis.NewScript(libRotation + "\n" + leadDecideSrc)
	queueDrain   = redis.NewScript(libRotation + "\n" + queueDrainSrc)
	configApply  = redis.NewScript(configApplySrc)
	repSetStatus = redis.NewScript(repSetStatusSrc)
)
