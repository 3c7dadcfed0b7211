package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func int32p(v int32) *int32 { return &v }

// violationFields returns the Field of every violation in err, in order, and
// fails the test when err is not a *ValidationError wrapping ErrInvalid.
func violationFields(t *testing.T, err error) []string {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("errors.Is(%v, ErrInvalid) = false, want true", err)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("errors.As(%v, *ValidationError) = false, want true", err)
	}
	if len(ve.Violations) == 0 {
		t.Fatalf("ValidationError with no violations: %v", err)
	}
	fields := make([]string, len(ve.Violations))
	for i, v := range ve.Violations {
		if v.Description == "" {
			t.Errorf("violation %q has an empty description", v.Field)
		}
		fields[i] = v.Field
	}
	return fields
}

func manyAttributes(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%02d", i)] = "v"
	}
	return m
}

func TestNormalizeLead(t *testing.T) {
	received := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	submitted := time.Date(2025, 3, 14, 8, 0, 0, 0, time.FixedZone("CET", 3600))

	tests := []struct {
		name string
		in   Lead
		// wantFields, when non-nil, is the exact set of violation fields
		// (order-insensitive, duplicates counted).
		wantFields []string
		// check, when set and no error is expected, inspects the result.
		check func(t *testing.T, got Lead)
	}{
		{
			name: "minimal valid lead",
			in:   Lead{ID: "lead-1"},
			check: func(t *testing.T, got Lead) {
				if got.ID != "lead-1" {
					t.Errorf("ID = %q, want lead-1", got.ID)
				}
			},
		},
		{name: "missing id", in: Lead{}, wantFields: []string{"lead.id"}},
		{name: "id of 129 bytes", in: Lead{ID: strings.Repeat("a", MaxIDBytes+1)}, wantFields: []string{"lead.id"}},
		{name: "id of exactly 128 bytes", in: Lead{ID: strings.Repeat("a", MaxIDBytes)}},
		{name: "id with a space", in: Lead{ID: "lead 1"}, wantFields: []string{"lead.id"}},
		{name: "id with a tab", in: Lead{ID: "lead\t1"}, wantFields: []string{"lead.id"}},
		{name: "id with a control char", in: Lead{ID: "lead\x001"}, wantFields: []string{"lead.id"}},
		{name: "id with DEL", in: Lead{ID: "lead\x7f"}, wantFields: []string{"lead.id"}},
		{name: "id not valid UTF-8", in: Lead{ID: "lead\xff"}, wantFields: []string{"lead.id"}},
		{name: "email without domain part", in: Lead{ID: "l", Email: "jane"}, wantFields: []string{"lead.email"}},
		{name: "email with empty domain", in: Lead{ID: "l", Email: "jane@"}, wantFields: []string{"lead.email"}},
		{name: "email with display name", in: Lead{ID: "l", Email: "Jane <jane@acme.com>"}, wantFields: []string{"lead.email"}},
		{name: "email in angle brackets", in: Lead{ID: "l", Email: "<jane@acme.com>"}, wantFields: []string{"lead.email"}},
		{name: "email domain without dot", in: Lead{ID: "l", Email: "jane@acme"}, wantFields: []string{"lead.email"}},
		{
			name: "email is optional",
			in:   Lead{ID: "l", Email: ""},
			check: func(t *testing.T, got Lead) {
				if got.Email != "" || got.CompanyDomain != "" {
					t.Errorf("Email, CompanyDomain = %q, %q, want both empty", got.Email, got.CompanyDomain)
				}
			},
		},
		{
			name: "email is trimmed and lower-cased",
			in:   Lead{ID: "l", Email: "  Jane.Doe@ACME.com "},
			check: func(t *testing.T, got Lead) {
				if got.Email != "jane.doe@acme.com" {
					t.Errorf("Email = %q, want jane.doe@acme.com", got.Email)
				}
			},
		},
		{name: "unknown country XX", in: Lead{ID: "l", Country: "XX"}, wantFields: []string{"lead.country"}},
		{name: "reserved country UK", in: Lead{ID: "l", Country: "UK"}, wantFields: []string{"lead.country"}},
		{name: "non-ASCII letters that upper-case to a code", in: Lead{ID: "l", Country: "ıt"}, wantFields: []string{"lead.country"}},
		{name: "reserved country EU", in: Lead{ID: "l", Country: "EU"}, wantFields: []string{"lead.country"}},
		{name: "alpha-3 country DEU", in: Lead{ID: "l", Country: "DEU"}, wantFields: []string{"lead.country"}},
		{
			name: "lower-case country is upper-cased",
			in:   Lead{ID: "l", Country: "de"},
			check: func(t *testing.T, got Lead) {
				if got.Country != "DE" {
					t.Errorf("Country = %q, want DE", got.Country)
				}
			},
		},
		{
			name: "country is trimmed",
			in:   Lead{ID: "l", Country: " gb "},
			check: func(t *testing.T, got Lead) {
				if got.Country != "GB" {
					t.Errorf("Country = %q, want GB", got.Country)
				}
			},
		},
		{name: "score -1", in: Lead{ID: "l", Score: int32p(-1)}, wantFields: []string{"lead.score"}},
		{name: "score 101", in: Lead{ID: "l", Score: int32p(101)}, wantFields: []string{"lead.score"}},
		{
			name: "score 0",
			in:   Lead{ID: "l", Score: int32p(0)},
			check: func(t *testing.T, got Lead) {
				if got.Score == nil || *got.Score != 0 {
					t.Errorf("Score = %v, want 0", got.Score)
				}
			},
		},
		{
			name: "score 100",
			in:   Lead{ID: "l", Score: int32p(100)},
			check: func(t *testing.T, got Lead) {
				if got.Score == nil || *got.Score != 100 {
					t.Errorf("Score = %v, want 100", got.Score)
				}
			},
		},
		{
			name: "score nil",
			in:   Lead{ID: "l"},
			check: func(t *testing.T, got Lead) {
				if got.Score != nil {
					t.Errorf("Score = %d, want nil", *got.Score)
				}
			},
		},
		{name: "employee_count -1", in: Lead{ID: "l", EmployeeCount: -1}, wantFields: []string{"lead.employee_count"}},
		{name: "employee_count too large", in: Lead{ID: "l", EmployeeCount: maxEmployeeCount + 1}, wantFields: []string{"lead.employee_count"}},
		{name: "employee_count at the limit", in: Lead{ID: "l", EmployeeCount: maxEmployeeCount}},
		{name: "65 attributes", in: Lead{ID: "l", Attributes: manyAttributes(MaxAttributes + 1)}, wantFields: []string{"lead.attributes"}},
		{name: "64 attributes", in: Lead{ID: "l", Attributes: manyAttributes(MaxAttributes)}},
		{
			name:       "attribute value of 1025 bytes",
			in:         Lead{ID: "l", Attributes: map[string]string{"k": strings.Repeat("x", MaxAttrValueBytes+1)}},
			wantFields: []string{`lead.attributes["k"]`},
		},
		{
			name: "attribute value of exactly 1024 bytes",
			in:   Lead{ID: "l", Attributes: map[string]string{"k": strings.Repeat("x", MaxAttrValueBytes)}},
		},
		{
			name:       "attribute key of 129 bytes",
			in:         Lead{ID: "l", Attributes: map[string]string{strings.Repeat("k", MaxAttrKeyBytes+1): "v"}},
			wantFields: []string{fmt.Sprintf("lead.attributes[%q]", strings.Repeat("k", MaxAttrKeyBytes+1))},
		},
		{
			name:       "empty attribute key",
			in:         Lead{ID: "l", Attributes: map[string]string{"": "v"}},
			wantFields: []string{"lead.attributes"},
		},
		{
			name:       "attribute value not UTF-8",
			in:         Lead{ID: "l", Attributes: map[string]string{"k": "\xff"}},
			wantFields: []string{`lead.attributes["k"]`},
		},
		{name: "bad language tag", in: Lead{ID: "l", Language: "not a tag"}, wantFields: []string{"lead.language"}},
		{name: "single-letter language tag", in: Lead{ID: "l", Language: "e"}, wantFields: []string{"lead.language"}},
		{
			name: "language tag is canonicalized",
			in:   Lead{ID: "l", Language: "pt-br"},
			check: func(t *testing.T, got Lead) {
				if got.Language != "pt-BR" {
					t.Errorf("Language = %q, want pt-BR", got.Language)
				}
			},
		},
		{name: "text field over 512 bytes", in: Lead{ID: "l", Company: strings.Repeat("c", MaxLeadFieldBytes+1)}, wantFields: []string{"lead.company"}},
		{name: "text field not UTF-8", in: Lead{ID: "l", Region: "\xc3"}, wantFields: []string{"lead.region"}},
		{
			name: "company_domain derived from the email",
			in:   Lead{ID: "l", Email: "jane@Sub.Acme.COM"},
			check: func(t *testing.T, got Lead) {
				if got.CompanyDomain != "sub.acme.com" {
					t.Errorf("CompanyDomain = %q, want sub.acme.com", got.CompanyDomain)
				}
			},
		},
		{
			name: "company_domain kept and lower-cased when given",
			in:   Lead{ID: "l", Email: "jane@gmail.com", CompanyDomain: " Acme.COM. "},
			check: func(t *testing.T, got Lead) {
				if got.CompanyDomain != "acme.com" {
					t.Errorf("CompanyDomain = %q, want acme.com", got.CompanyDomain)
				}
			},
		},
		{
			name: "submitted_at defaults to the receive time",
			in:   Lead{ID: "l"},
			check: func(t *testing.T, got Lead) {
				if !got.SubmittedAt.Equal(received) || got.SubmittedAt.Location() != time.UTC {
					t.Errorf("SubmittedAt = %v, want %v in UTC", got.SubmittedAt, received)
				}
			},
		},
		{
			name: "submitted_at kept and converted to UTC",
			in:   Lead{ID: "l", SubmittedAt: submitted},
			check: func(t *testing.T, got Lead) {
				if !got.SubmittedAt.Equal(submitted) || got.SubmittedAt.Location() != time.UTC {
					t.Errorf("SubmittedAt = %v, want %v in UTC", got.SubmittedAt, submitted)
				}
			},
		},
		{
			name:       "submitted_at in the future",
			in:         Lead{ID: "l", SubmittedAt: received.Add(2 * time.Hour)},
			wantFields: []string{"lead.submitted_at"},
		},
		{
			name: "all problems are reported",
			in: Lead{
				ID:            "bad id",
				Email:         "jane@",
				Country:       "UK",
				Language:      "not a tag",
				Score:         int32p(101),
				EmployeeCount: -5,
				Attributes:    map[string]string{"big": strings.Repeat("x", MaxAttrValueBytes+1)},
			},
			wantFields: []string{
				"lead.id", "lead.email", "lead.country", "lead.language",
				"lead.score", "lead.employee_count", `lead.attributes["big"]`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			got, err := NormalizeLead(in, received)
			if tc.wantFields == nil {
				if err != nil {
					t.Fatalf("NormalizeLead() error = %v, want nil", err)
				}
				if tc.check != nil {
					tc.check(t, got)
				}
				return
			}
			if err == nil {
				t.Fatalf("NormalizeLead() error = nil, want violations of %v", tc.wantFields)
			}
			fields := violationFields(t, err)
			want := slices.Clone(tc.wantFields)
			slices.Sort(fields)
			slices.Sort(want)
			if !slices.Equal(fields, want) {
				t.Errorf("violation fields = %q, want %q (error: %v)", fields, want, err)
			}
		})
	}
}

// TestNormalizeLeadKeepsInput checks that normalizing returns a new value
// and leaves the caller's lead as it was.
func TestNormalizeLeadKeepsInput(t *testing.T) {
	in := Lead{ID: "l", Email: " Jane@Acme.com ", Country: "de", Attributes: map[string]string{"k": "v"}}
	orig := in
	if _, err := NormalizeLead(in, time.Now()); err != nil {
		t.Fatal(err)
	}
	if in.Email != orig.Email || in.Country != orig.Country {
		t.Errorf("input modified: %+v", in)
	}
}

func FuzzNormalizeLead(f *testing.F) {
	f.Add("lead-1", "jane@acme.com", "de", "de-AT", int32(50), "k", "v")
	f.Add("", "jane", "UK", "not a tag", int32(-1), "", "")
	f.Add("a b", "Jane <jane@acme.com>", "XX", "pt-br", int32(101), "key", strings.Repeat("x", 1025))
	f.Add("\x00", "JANE@ACME.COM", " us ", "zh-Hant-TW", int32(0), "\xff", "\xff")
	f.Add("x", "\"a b\"@acme.com", "ıt", "en_US", int32(100), "k", "")
	received := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, id, email, country, lang string, score int32, key, value string) {
		in := Lead{ID: id, Email: email, Country: country, Language: lang}
		if score != -1000 { // -1000 stands for "no score"
			in.Score = &score
		}
		if key != "" || value != "" {
			in.Attributes = map[string]string{key: value}
		}
		got, err := NormalizeLead(in, received)
		if err != nil {
			var ve *ValidationError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) || len(ve.Violations) == 0 {
				t.Fatalf("error %v is not a non-empty *ValidationError", err)
			}
			return
		}
		if got.ID == "" || len(got.ID) > MaxIDBytes {
			t.Errorf("ID = %q (%d bytes)", got.ID, len(got.ID))
		}
		if !utf8.ValidString(got.ID) {
			t.Errorf("ID %q is not valid UTF-8", got.ID)
		}
		if got.Country != "" {
			if len(got.Country) != 2 || got.Country[0] < 'A' || got.Country[0] > 'Z' ||
				got.Country[1] < 'A' || got.Country[1] > 'Z' {
				t.Errorf("Country = %q, want two upper-case letters", got.Country)
			}
			if _, ok := countryCodes[got.Country]; !ok {
				t.Errorf("Country = %q, not an assigned code", got.Country)
			}
		}
		if got.Score != nil && (*got.Score < 0 || *got.Score > maxScore) {
			t.Errorf("Score = %d, want 0-%d", *got.Score, maxScore)
		}
		if got.Email != strings.ToLower(got.Email) {
			t.Errorf("Email = %q, not lower-case", got.Email)
		}
		if got.Email != "" && !strings.Contains(got.Email, "@") {
			t.Errorf("Email = %q has no @", got.Email)
		}
		if got.SubmittedAt.IsZero() {
			t.Errorf("SubmittedAt is zero")
		}
		if len(got.Attributes) > MaxAttributes {
			t.Errorf("%d attributes", len(got.Attributes))
		}
	})
}
