package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// BenchmarkAssignLead measures one whole decision through the engine: lead
// validation, rule matching against examples/routing.yaml, and the one
// lead_decide script call. The "redis" case pays a real loopback round trip;
// compare it with BenchmarkRedisRoundTrip, the floor for any design that
// keeps state in Redis, measured in the same run.
func BenchmarkAssignLead(b *testing.B) {
	for _, be := range redistest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			st := be.Open(b)
			ctx := context.Background()
			ws := redistest.Workspace(b)
			eng := engine.New(st, engine.WithLogger(quiet))
			cfg := loadExample(b)
			if _, err := eng.ApplyConfig(ctx, ws, cfg, nil); err != nil {
				b.Fatal(err)
			}
			score := int32(80)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				l := engine.Lead{ID: fmt.Sprint("bench-", i), Email: "jane@acme.de", Country: "DE",
					Language: "de", Source: "demo_request", Score: &score, EmployeeCount: 120}
				if _, _, err := eng.AssignLead(ctx, ws, l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRedisRoundTrip is the baseline: one EVALSHA of a script that
// does nothing, on the same real Redis.
func BenchmarkRedisRoundTrip(b *testing.B) {
	st := redistest.RealStore(b)
	ctx := context.Background()
	sha, err := st.Client().ScriptLoad(ctx, "return 1").Result()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := st.Client().EvalSha(ctx, sha, []string{"k"}).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPreviewAssignment is a decision without writes.
func BenchmarkPreviewAssignment(b *testing.B) {
	st := redistest.RealStore(b)
	ctx := context.Background()
	ws := redistest.Workspace(b)
	eng := engine.New(st, engine.WithLogger(quiet))
	if _, err := eng.ApplyConfig(ctx, ws, loadExample(b), nil); err != nil {
		b.Fatal(err)
	}
	l := engine.Lead{ID: "preview", Country: "US", PostalCode: "10001"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := eng.PreviewAssignment(ctx, ws, l); err != nil {
			b.Fatal(err)
		}
	}
}

func loadExample(tb testing.TB) *engine.Config {
	tb.Helper()
	y, err := readFile("../examples/routing.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := engine.ParseConfigYAML(strings.NewReader(y))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}
