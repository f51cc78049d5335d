package app_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"partyledger/app"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestLogWriterFlushesOnTimeAndClose(t *testing.T) {
	var out syncBuf
	w := app.NewLogWriter(&out, 20*time.Millisecond)
	log := app.NewLogger(w, "info")
	log.InfoContext(app.WithRequestID(context.Background(), "rid-12345678"), "hello")
	if out.String() != "" {
		t.Fatal("written before a flush")
	}
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(out.String(), `"request_id":"rid-12345678"`) {
		if time.Now().After(deadline) {
			t.Fatalf("not flushed by the ticker: %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	log.Info("last words")
	w.Close()
	if !strings.Contains(out.String(), "last words") {
		t.Fatal("Close lost a line")
	}
}
