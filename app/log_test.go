package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"partyledger/app"
	"partyledger/app/apptest"
)

func TestLogWriterFlushesOnTimeAndClose(t *testing.T) {
	var out apptest.Buffer
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
