package engine

import (
	"context"
	"errors"
	"fmt"
)

// Erasure: a person's right to be forgotten. EraseContact finds a person's
// records by the person index (their email's person hash, Person) and
// erases each as EraseLead does; the store's lead_erase script gives back
// whatever the lead holds, in any state, and deletes its record in one
// step. Nothing about the person remains in Redis but what its persistence
// files hold until they are rewritten (docs/deployment.md, "Erasure").

const (
	// erasePage is how many of a person's leads one index read lists.
	erasePage = 100
	// maxErasePages bounds one EraseContact: 1,000 pages of 100 leads.
	// A person with more records than that (or whose leads keep arriving)
	// is erased in part, and the call says so.
	maxErasePages = 1000
)

// EraseLead erases one lead, whatever its state, and returns the state it
// was in. ErrNotFound when it has no record.
func (e *Engine) EraseLead(ctx context.Context, ws, leadID string) (State, error) {
	ws, wsErr := NormalizeWorkspace(ws)
	var v violations
	if leadID == "" {
		v.add("lead_id", "required")
	}
	if err := joinViolations(wsErr, v.err()); err != nil {
		return "", err
	}
	return underConfig(ctx, e, ws, func(cc *compiledConfig, _ bool) (State, error) {
		return e.erase(ctx, ws, cc, leadID, "")
	})
}

// EraseContact erases every lead of the person with this email address and
// returns their ids. An address with no records erases nothing.
func (e *Engine) EraseContact(ctx context.Context, ws, email string) ([]string, error) {
	ws, wsErr := NormalizeWorkspace(ws)
	var v violations
	addr, err := NormalizeEmail(email)
	switch {
	case email == "":
		v.add("email", "required")
	case err != nil:
		v.add("email", "not a valid email address (%v)", err)
	}
	if err := joinViolations(wsErr, v.err()); err != nil {
		return nil, err
	}
	var erased []string
	_, err = underConfig(ctx, e, ws, func(cc *compiledConfig, _ bool) (struct{}, error) {
		person := cc.personOf(addr)
		for page := 0; ; page++ {
			if page == maxErasePages {
				return struct{}{}, fmt.Errorf("%w: erased %d leads of the person; more remain: call again", ErrUnavailable, len(erased))
			}
			ids, err := e.store.PersonLeads(ctx, ws, person, erasePage)
			if err != nil {
				return struct{}{}, err
			}
			if len(ids) == 0 {
				break
			}
			for _, id := range ids {
				_, err := e.erase(ctx, ws, cc, id, person)
				if errors.Is(err, ErrNotFound) {
					continue // erased meanwhile, or its id is someone else's now
				}
				if err != nil {
					return struct{}{}, err
				}
				erased = append(erased, id)
			}
		}
		// A binding that names a lead removed before (an old sticky key
		// outlives its lead by a day at most) goes too.
		return struct{}{}, e.store.ForgetPerson(ctx, ws, person)
	})
	if len(erased) > 0 {
		e.log.Info("contact erased", "workspace", ws, "leads", len(erased))
	}
	return erased, err
}

// erase erases one lead under cc (person's, when person is set; see
// Erasure): it reads the record, erases what was read (again, if it
// changed meanwhile) and drains the pools of a rep it freed.
func (e *Engine) erase(ctx context.Context, ws string, cc *compiledConfig, leadID, person string) (State, error) {
	for range maxMoves {
		a, err := e.store.Assignment(ctx, ws, leadID)
		if errors.Is(err, ErrNotFound) && person != "" {
			a, err = &Assignment{LeadID: leadID, Person: person}, nil // its index entry goes
		}
		if err != nil {
			return "", err
		}
		if err := e.ClockOK(); err != nil {
			return "", err
		}
		moved, err := e.store.EraseLead(ctx, ws, cc.id, &Erasure{Assignment: a, Ranked: cc.rankedPools[a.RepID], Person: person}, e.clock.Now())
		if err != nil {
			return "", err
		}
		if moved {
			continue
		}
		e.log.Info("lead erased", "workspace", ws, "lead", leadID, "state", a.State)
		if a.State == StateAssigned || a.State == StateOffered {
			for _, pool := range cc.repPools[a.RepID] {
				e.drain(ctx, ws, pool)
			}
		}
		return a.State, nil
	}
	return "", movingErr(leadID)
}
