package engine

import (
	"slices"
	"strings"
)

// ruleIndex finds the few rules that can match a lead without scanning all
// of them. Real orgs route on thousands of territories (country, region,
// postal-code prefix); each rule is filed under the most selective of its
// territory criteria, so a lead's candidates are the rules filed under its
// own country, region and the prefixes of its postal code, plus the rules
// with no such criterion. Candidates are then evaluated in rule order with
// the full criteria: the first match is exactly the first match of a scan.
type ruleIndex struct {
	byCountry  map[string]*territoryIndex
	anyCountry *territoryIndex
}

// territoryIndex files the rules of one country (or of no country).
type territoryIndex struct {
	byRegion map[string][]int
	postal   *prefixNode
	rest     []int // rules with neither a region nor a postal criterion
}

// prefixNode is a trie over normalized postal-code prefixes.
type prefixNode struct {
	next  map[byte]*prefixNode
	rules []int
}

func newTerritoryIndex() *territoryIndex {
	return &territoryIndex{byRegion: map[string][]int{}, postal: &prefixNode{}}
}

func buildIndex(rules []compiledRule) *ruleIndex {
	ix := &ruleIndex{byCountry: map[string]*territoryIndex{}, anyCountry: newTerritoryIndex()}
	for i := range rules {
		r := &rules[i]
		var subs []*territoryIndex
		if r.countries.active() {
			for c := range r.countries.m {
				c = strings.ToUpper(c)
				if ix.byCountry[c] == nil {
					ix.byCountry[c] = newTerritoryIndex()
				}
				subs = append(subs, ix.byCountry[c])
			}
		} else {
			subs = append(subs, ix.anyCountry)
		}
		for _, sub := range subs {
			switch {
			case len(r.postalPrefixes) > 0:
				for _, p := range r.postalPrefixes {
					sub.postal.insert(p, i)
				}
			case r.regions.active():
				for reg := range r.regions.m {
					sub.byRegion[reg] = append(sub.byRegion[reg], i)
				}
			default:
				sub.rest = append(sub.rest, i)
			}
		}
	}
	return ix
}

func (n *prefixNode) insert(prefix string, rule int) {
	for i := 0; i < len(prefix); i++ {
		if n.next == nil {
			n.next = map[byte]*prefixNode{}
		}
		child := n.next[prefix[i]]
		if child == nil {
			child = &prefixNode{}
			n.next[prefix[i]] = child
		}
		n = child
	}
	n.rules = append(n.rules, rule)
}

// candidates appends the indexes of the rules that may match the lead, in
// rule order, without duplicates.
func (ix *ruleIndex) candidates(l *Lead, dst []int) []int {
	if sub := ix.byCountry[strings.ToUpper(l.Country)]; sub != nil && l.Country != "" {
		dst = sub.candidates(l, dst)
	}
	dst = ix.anyCountry.candidates(l, dst)
	slices.Sort(dst)
	return slices.Compact(dst)
}

func (t *territoryIndex) candidates(l *Lead, dst []int) []int {
	dst = append(dst, t.rest...)
	if l.Region != "" {
		dst = append(dst, t.byRegion[strings.ToLower(l.Region)]...)
	}
	if postal := normalizePostal(l.PostalCode); postal != "" {
		n := t.postal
		for i := 0; i < len(postal) && n.next != nil; i++ {
			if n = n.next[postal[i]]; n == nil {
				break
			}
			dst = append(dst, n.rules...)
		}
	}
	return dst
}
