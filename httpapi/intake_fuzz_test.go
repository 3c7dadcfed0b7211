package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// FuzzIntakeBody: whatever a form tool posts, with whatever headers, the
// signature check and the mapping answer a lead or an error, never a
// panic, and a lead they answer has the id the mapping names.
func FuzzIntakeBody(f *testing.F) {
	f.Add("application/json", `{"form": {"answers": [{"field": {"ref": "email"}, "email": "a@b.co"}], "id": "x1", "n": 3}}`, "sig", "1", "v1,AAAA")
	f.Add("application/x-www-form-urlencoded", "id=x2&email=a%40b.co&size=12", "", "", "")
	f.Add("", `[1, 2, {"form": null}]`, "msg", "99999999999999999999", "v1,")
	f.Add("text/plain; charset=\x00", "\xff\xfe", "", "-5", "v2,zz v1,===")
	intakes := []*engine.Intake{
		{ID: "j", Signature: engine.IntakeSignature{Scheme: engine.SchemeStandardWebhooks, Tolerance: engine.Duration(time.Minute)},
			LeadID: "header:webhook-id", Mapping: map[string]string{"email": "form.answers[field.ref=email].email", "employee_count": "form.n",
				"submitted_at": "form.n", "score": "form.answers[0]"}, Defaults: map[string]string{"country": "DE"},
			Attributes: map[string]string{"a": "form.answers[9].x"}},
		{ID: "f", Signature: engine.IntakeSignature{Scheme: engine.SchemeHMACSHA256, Header: "X-Sig", Encoding: "BASE64"},
			LeadID: "id", Mapping: map[string]string{"email": "email", "employee_count": "size"}},
	}
	f.Fuzz(func(t *testing.T, contentType, body, id, ts, sig string) {
		h := http.Header{}
		h.Set("Content-Type", contentType)
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		h.Set("X-Sig", sig)
		for _, in := range intakes {
			_ = verifySignature(&in.Signature, []byte("whsec_c2VjcmV0"), h, []byte(body), time.Unix(1_800_000_000, 0))
			lead, _, err := mapLead(in, h, []byte(body))
			if err == nil && lead.GetId() == "" {
				t.Fatalf("intake %s: a lead without an id from %q", in.ID, body)
			}
		}
	})
}
