package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// geo is a country leads come from, with how often, the regions and postal
// codes its forms capture and the languages its people write in (the first
// the most common).
type geo struct {
	country string
	weight  int
	regions []string
	langs   []string
}

// geos weighs the countries of a US-headquartered B2B company's inbound
// traffic: mostly North America, then EMEA, then APAC and Latin America,
// with a tail that only the default rule catches.
var geos = []geo{
	{"US", 40, []string{"CA", "NY", "TX", "WA", "MA", "IL", "FL", "NJ", "GA", "CO", "OR", "PA", "AZ", "VA", "NC", "OH", "MN", "UT", "NV", "MI"}, []string{"en", "en", "en", "es"}},
	{"CA", 5, []string{"ON", "QC", "BC", "AB"}, []string{"en", "en", "fr"}},
	{"GB", 8, []string{"England", "Scotland", "Wales"}, []string{"en"}},
	{"IE", 1, nil, []string{"en"}},
	{"DE", 7, []string{"Bavaria", "Berlin", "Hesse", "Hamburg"}, []string{"de", "de", "de", "en"}},
	{"AT", 1, nil, []string{"de"}},
	{"CH", 2, nil, []string{"de", "fr", "de", "en"}},
	{"FR", 4, nil, []string{"fr", "fr", "en"}},
	{"BE", 1, nil, []string{"fr", "nl"}},
	{"NL", 2, nil, []string{"nl", "en"}},
	{"ES", 2, nil, []string{"es"}},
	{"IT", 2, nil, []string{"it"}},
	{"SE", 1, nil, []string{"sv", "en"}},
	{"PL", 1, nil, []string{"pl"}},
	{"BR", 3, []string{"SP", "RJ", "MG"}, []string{"pt-BR"}},
	{"MX", 2, nil, []string{"es"}},
	{"AR", 1, nil, []string{"es"}},
	{"AU", 3, []string{"NSW", "VIC", "QLD"}, []string{"en"}},
	{"JP", 2, nil, []string{"ja"}},
	{"SG", 1, nil, []string{"en"}},
	{"IN", 3, []string{"KA", "MH", "DL"}, []string{"en"}},
	{"ZA", 1, nil, []string{"en"}},
	{"AE", 1, nil, []string{"en", "ar"}},
	{"IL", 1, nil, []string{"en", "he"}},
	{"KR", 1, nil, []string{"ko"}},
}

// usPostal gives each US state the leading digits of its ZIP codes; New
// York's include the metro prefixes of the ny-metro rule.
var usPostal = map[string][]string{
	"CA": {"90", "94", "95"}, "NY": {"100", "101", "102", "104", "112", "113", "120", "146"}, "TX": {"75", "77", "78"},
	"WA": {"98"}, "MA": {"021", "024"}, "IL": {"606"}, "FL": {"33", "32"}, "NJ": {"070", "085"}, "GA": {"303"},
	"CO": {"802"}, "OR": {"972"}, "PA": {"191", "152"}, "AZ": {"850"}, "VA": {"22"}, "NC": {"27"}, "OH": {"43"},
	"MN": {"554"}, "UT": {"841"}, "NV": {"891"}, "MI": {"48"},
}

type weighted struct {
	value  string
	weight int
}

var (
	industries = []weighted{
		{"software", 25}, {"financial services", 10}, {"manufacturing", 10}, {"professional services", 10},
		{"retail", 8}, {"education", 5}, {"logistics", 5}, {"media", 5}, {"telecommunications", 5},
		{"healthcare", 5}, {"hospital & health care", 3}, {"biotechnology", 2}, {"government", 3}, {"", 4},
	}
	sources = []weighted{
		{"web_form", 30}, {"demo_request", 20}, {"pricing_page", 15}, {"trial_signup", 15},
		{"webinar", 10}, {"content_download", 10},
	}
	products   = []weighted{{"platform", 40}, {"analytics", 25}, {"integrations", 15}, {"", 20}}
	firstNames = []string{"jane", "john", "maria", "wei", "amir", "sofia", "lucas", "emma", "noah", "olivia",
		"liam", "ava", "mateo", "yuki", "priya", "jonas", "lea", "hugo", "chloe", "david", "sara", "omar",
		"anna", "ben", "ines", "kenji", "fatima", "lars", "nina", "raj"}
	lastNames = []string{"smith", "garcia", "mueller", "chen", "kim", "rossi", "dubois", "nakamura",
		"johnson", "silva", "novak", "patel", "jones", "schmidt", "martin", "lopez", "brown", "wilson",
		"khan", "larsen", "moreau", "fischer", "tanaka", "cohen", "okafor", "ivanova", "murphy", "berg",
		"costa", "singh"}
	companyWords = []string{"acme", "northwind", "contoso", "fabrikam", "tailspin", "adventure", "litware",
		"proseware", "wingtip", "fourthcoffee", "bluesky", "redwood", "ironbridge", "silverline",
		"brightpath", "nimbus", "quantum", "evergreen", "harbor", "summit"}
	companyKinds = []string{"labs", "systems", "group", "tech", "logistics", "bank", "health", "retail",
		"media", "works"}
	tlds        = []string{"com", "com", "com", "io", "co", "net", "de", "co.uk", "fr"}
	freeDomains = []string{"gmail.com", "outlook.com", "yahoo.com"}
	utmSources  = []string{"google", "linkedin", "newsletter", "direct", "partner", "g2", "event"}
	pages       = []string{"/pricing", "/demo", "/contact", "/product/analytics", "/blog/speed-to-lead", "/trial"}
)

// leadGen produces a deterministic sequence of realistic leads, each with a
// unique id and email. Two generators with the same seed produce the same
// leads but for the id prefix, so AssignLead and the baseline receive the
// same requests, byte for byte the same size. It is not safe for
// concurrent use: each load worker has its own.
type leadGen struct {
	rng     *rand.Rand
	prefix  string // unique per run, segment and worker
	seq     int
	attrs   []map[string]string // shared, read-only attribute sets
	emails  [64]string          // recent emails, for repeat form fills
	geoSum  int
	scratch []byte
}

// newLeadGen returns a generator whose ids start with prefix. Prefixes of
// the same length give leads of the same size.
func newLeadGen(seed uint64, prefix string) *leadGen {
	g := &leadGen{rng: rand.New(rand.NewPCG(seed, 0x1ead)), prefix: prefix}
	for _, c := range geos {
		g.geoSum += c.weight
	}
	// A few dozen attribute sets, shared by all leads of this generator:
	// gRPC only reads them while marshalling.
	for i := range 48 {
		plan := "team"
		switch {
		case i%16 == 0:
			plan = "enterprise"
		case i%3 == 0:
			plan = "starter"
		}
		g.attrs = append(g.attrs, map[string]string{
			"utm_source":   utmSources[i%len(utmSources)],
			"utm_campaign": fmt.Sprintf("fy26-q%d-%s", 1+i%4, []string{"brand", "retarget", "abm", "launch"}[i%4]),
			"landing_page": pages[i%len(pages)],
			"plan":         plan,
		})
	}
	return g
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func pickWeighted(r *rand.Rand, s []weighted) string {
	total := 0
	for _, w := range s {
		total += w.weight
	}
	n := r.IntN(total)
	for _, w := range s {
		if n < w.weight {
			return w.value
		}
		n -= w.weight
	}
	return s[len(s)-1].value
}

// next returns a new lead submitted a few seconds before now.
func (g *leadGen) next(now time.Time) *pb.Lead {
	r := g.rng
	g.seq++
	g.scratch = append(g.scratch[:0], g.prefix...)
	g.scratch = append(g.scratch, '-')
	g.scratch = appendPadded(g.scratch, g.seq, 7)
	id := string(g.scratch)

	n := r.IntN(g.geoSum)
	var c geo
	for _, c = range geos {
		if n < c.weight {
			break
		}
		n -= c.weight
	}
	first := pick(r, firstNames)
	l := &pb.Lead{
		Id:          id,
		FirstName:   strings.ToUpper(first[:1]) + first[1:],
		LastName:    pick(r, lastNames),
		Country:     c.country,
		Language:    pick(r, c.langs),
		Industry:    pickWeighted(r, industries),
		Source:      pickWeighted(r, sources),
		Product:     pickWeighted(r, products),
		Attributes:  g.attrs[r.IntN(len(g.attrs))],
		SubmittedAt: timestamppb.New(now.Add(-time.Duration(r.IntN(5000)) * time.Millisecond)),
	}
	if len(c.regions) > 0 {
		l.Region = pick(r, c.regions)
	}
	if c.country == "US" {
		zip := pick(r, usPostal[l.Region])
		for len(zip) < 5 {
			zip += strconv.Itoa(r.IntN(10))
		}
		l.PostalCode = zip
	}
	// Employee counts: unknown, small, mid-market, enterprise.
	switch x := r.IntN(100); {
	case x < 10:
	case x < 40:
		l.EmployeeCount = 1 + r.Int32N(50)
	case x < 65:
		l.EmployeeCount = 51 + r.Int32N(150)
	case x < 85:
		l.EmployeeCount = 201 + r.Int32N(800)
	case x < 97:
		l.EmployeeCount = 1000 + r.Int32N(9000)
	default:
		l.EmployeeCount = 10000 + r.Int32N(190000)
	}
	if r.IntN(100) < 85 {
		s := r.Int32N(101)
		l.Score = &s
	}

	// The company: an owned account now and then, a personal address
	// sometimes, mostly a business domain.
	var domain string
	switch x := r.IntN(100); {
	case x < 4:
		domain = pick(r, ownedDomains)
		l.Company = strings.TrimSuffix(domain, ".com")
	case x < 14:
		domain = pick(r, freeDomains)
	default:
		w, k := pick(r, companyWords), pick(r, companyKinds)
		l.Company = w + " " + k
		domain = w + k + "." + pick(r, tlds)
		l.CompanyDomain = domain
	}
	// Two percent are a second form fill by a recent lead's person (same
	// email, new lead id: sticky dedupe); the rest are new people, made
	// unique by the lead id's tail.
	slot := g.seq % len(g.emails)
	if prev := g.emails[(slot+17)%len(g.emails)]; prev != "" && r.IntN(100) < 2 {
		l.Email = prev
	} else {
		l.Email = first + "." + l.LastName + "+" + id + "@" + domain
	}
	g.emails[slot] = l.Email
	return l
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(b []byte, n, width int) []byte {
	s := strconv.Itoa(n)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}
