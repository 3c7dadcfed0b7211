package engine

import (
	"context"
	"sync"
)

// Presence that follows the connection (settings.presence_follows_connection).
// Each replica counts the desktop streams open per rep and, on the sweeper's
// drain cadence, writes a heartbeat for those reps. A rep whose last
// heartbeat, from any replica, is older than the grace period is set OFFLINE
// by the sweeper; when one of its desktops connects again, the status it had
// comes back.

// connections counts the desktop streams open on this replica.
type connections struct {
	mu   sync.Mutex
	open map[string]map[string]int // workspace -> rep -> streams
}

// RepConnected records that a rep's desktop opened a stream on this replica
// and returns the function to call when it closes. Under
// presence_follows_connection, a rep the engine had set OFFLINE for being
// disconnected gets its status back (and its pools drain).
func (e *Engine) RepConnected(ctx context.Context, ws, repID string) (func(), error) {
	ws, err := NormalizeWorkspace(ws)
	if err != nil {
		return nil, err
	}
	e.conns.mu.Lock()
	if e.conns.open == nil {
		e.conns.open = map[string]map[string]int{}
	}
	if e.conns.open[ws] == nil {
		e.conns.open[ws] = map[string]int{}
	}
	e.conns.open[ws][repID]++
	e.conns.mu.Unlock()
	release := func() {
		e.conns.mu.Lock()
		if e.conns.open[ws][repID]--; e.conns.open[ws][repID] <= 0 {
			delete(e.conns.open[ws], repID)
		}
		e.conns.mu.Unlock()
	}
	cc, err := e.config(ctx, ws, false)
	if err != nil || cc.cfg.Settings.Grace() == 0 {
		return release, nil
	}
	_, err = underConfig(ctx, e, ws, func(cc *compiledConfig, _ bool) (RepStatus, error) {
		if err := e.ClockOK(); err != nil {
			return "", err
		}
		st, err := e.store.RepConnection(ctx, ws, cc.id, repID, cc.repPools[repID], true, e.clock.Now(), e.clock.Now())
		if err == nil && st == StatusAvailable {
			for _, pool := range cc.repPools[repID] {
				e.drain(ctx, ws, pool)
			}
		}
		return st, err
	})
	if err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// connectedReps returns the reps with a desktop stream open on this replica.
func (e *Engine) connectedReps(ws string) []string {
	e.conns.mu.Lock()
	defer e.conns.mu.Unlock()
	reps := make([]string, 0, len(e.conns.open[ws]))
	for rep := range e.conns.open[ws] {
		reps = append(reps, rep)
	}
	return reps
}

// sweepPresence writes this replica's heartbeats and sets OFFLINE the reps
// whose desktops have been gone for the grace period.
func (e *Engine) sweepPresence(ctx context.Context, ws string, cc *compiledConfig) error {
	grace := cc.cfg.Settings.Grace()
	if grace == 0 {
		return nil
	}
	now := e.clock.Now()
	if err := e.store.Heartbeat(ctx, ws, e.connectedReps(ws), now, false); err != nil {
		return err
	}
	lost, err := e.store.LostConnections(ctx, ws, now.Add(-grace), 1000)
	if err != nil {
		return err
	}
	for _, rep := range lost {
		st, err := underConfig(ctx, e, ws, func(cc *compiledConfig, _ bool) (RepStatus, error) {
			return e.store.RepConnection(ctx, ws, cc.id, rep, cc.repPools[rep], false, now.Add(-grace), now)
		})
		if err != nil {
			return err
		}
		if st == StatusOffline {
			e.log.Info("rep set offline: no desktop connection", "workspace", ws, "rep", rep, "grace", grace)
		}
	}
	return nil
}
