package server_test

import (
	"bytes"
	"os"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/server"
)

// FuzzConfigFromProto: any bytes an ApplyRoutingConfig request could carry
// either fail to decode, or convert and validate without a panic; a config
// that validates survives the round trip to proto and back.
func FuzzConfigFromProto(f *testing.F) {
	body, err := os.ReadFile("../examples/routing.yaml")
	if err != nil {
		f.Fatal(err)
	}
	cfg, err := engine.ParseConfigYAML(bytesReader(body))
	if err != nil {
		f.Fatal(err)
	}
	seed, _ := proto.Marshal(server.ConfigToProto(cfg))
	f.Add(seed)
	small, _ := proto.Marshal(&pb.RoutingConfig{})
	f.Add(small)
	f.Fuzz(func(t *testing.T, b []byte) {
		var msg pb.RoutingConfig
		if err := proto.Unmarshal(b, &msg); err != nil {
			return
		}
		c := server.ConfigFromProto(&msg)
		if c.Validate() != nil {
			return
		}
		again := server.ConfigFromProto(server.ConfigToProto(c))
		if err := again.Validate(); err != nil {
			t.Fatalf("a valid config does not survive the proto round trip: %v", err)
		}
	})
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
