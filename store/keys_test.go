package store

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// hashTag returns the part of a key Redis Cluster hashes: the text between
// the first '{' and the next '}', when non-empty; else the whole key.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

// TestEveryKeyIsHashTaggedByWorkspace calls every key builder and checks that
// Redis Cluster would hash each key by its workspace alone, so all keys of
// one workspace share a slot and every script is cluster-legal.
func TestEveryKeyIsHashTaggedByWorkspace(t *testing.T) {
	for _, ws := range []string{"default", "acme-eu", "t1.2_x"} {
		k := keysFor(DefaultPrefix, ws)
		v := reflect.ValueOf(k)
		for i := 0; i < v.NumMethod(); i++ {
			m := v.Method(i)
			args := make([]reflect.Value, m.Type().NumIn())
			for j := range args {
				args[j] = reflect.ValueOf("id:{x}") // ids with braces must not move the slot
			}
			key := m.Call(args)[0].String()
			if got := hashTag(key); got != ws {
				t.Errorf("%s: key %q hashes by %q, want %q", v.Type().Method(i).Name, key, got, ws)
			}
		}
	}
}

// TestCommonKeysCacheIsBounded: past maxCommonKeys workspaces the common
// key names are built per call, still right, and no more are kept.
func TestCommonKeysCacheIsBounded(t *testing.T) {
	for i := range maxCommonKeys + 10 {
		ws := fmt.Sprintf("bounded-%d", i)
		k := keysFor("lrt-bound", ws)
		got := k.common()
		if len(got) != 14 || got[0] != k.config() || got[13] != k.statusChanged() || cap(got) < len(got)+16 {
			t.Fatalf("%s: common() = %v (cap %d)", ws, got, cap(got))
		}
	}
	if n := commonKeysSize.Load(); n > maxCommonKeys {
		t.Errorf("%d workspaces' keys kept, want at most %d", n, maxCommonKeys)
	}
}

// TestHashSlot: the slots Redis's documentation gives for these keys.
func TestHashSlot(t *testing.T) {
	for key, want := range map[string]uint16{"123456789": 12739, "somekey": 11058, "{user1000}.following": 3443} {
		if got := hashSlot(key); got != want {
			t.Errorf("hashSlot(%q) = %d, want %d", key, got, want)
		}
	}
}
