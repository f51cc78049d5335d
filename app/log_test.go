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

// TestLogLevels: LEDGER_LOG_LEVEL's four levels, in any case, let through their level
// and those above it; anything else is info.
func TestLogLevels(t *testing.T) {
	for level, want := range map[string]string{
		"debug": "DIWE", "DEBUG": "DIWE", "info": "IWE", "warn": "WE", "Warn": "WE", "error": "E", "": "IWE", "verbose": "IWE",
	} {
		var out apptest.Buffer
		log := app.NewLogger(&out, level)
		log.Debug("D")
		log.Info("I")
		log.Warn("W")
		log.Error("E")
		got := ""
		for _, m := range []string{"D", "I", "W", "E"} {
			if strings.Contains(out.String(), `"msg":"`+m+`"`) {
				got += m
			}
		}
		if got != want {
			t.Errorf("level %q let through %q, want %q", level, got, want)
		}
	}
}

// TestLogWriterFlushesAFullBuffer: 32 KiB of lines go out at once, without waiting for
// the ticker; and a logger with attributes or a group still adds the request id.
func TestLogWriterFlushesAFullBuffer(t *testing.T) {
	var out apptest.Buffer
	w := app.NewLogWriter(&out, time.Hour)
	defer w.Close()
	log := app.NewLogger(w, "info")
	ctx := app.WithRequestID(context.Background(), "rid-87654321")
	log.With("route", "/x").WithGroup("g").InfoContext(ctx, "grouped", "k", "v")
	line := strings.Repeat("x", 1000)
	for i := 0; i < 40; i++ {
		log.Info(line)
	}
	if n := strings.Count(out.String(), line); n < 20 {
		t.Fatalf("%d lines of 1 KB written after 40 KB logged, want those of the first 32 KiB", n)
	}
	if !strings.Contains(out.String(), `"rid-87654321"`) {
		t.Fatalf("the grouped line lost its request id: %.300s", out.String())
	}
}
