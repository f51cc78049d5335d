package app_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"partyledger/app"
	"partyledger/models"
)

// The configuration refuses half of WeChat's credentials, but the client does not rely
// on it: built with half of them, it calls nobody and says it is not configured.
func TestWechatClientWithHalfItsCredentials(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Write([]byte(`{"openid":"o"}`))
	}))
	defer srv.Close()
	for name, c := range map[string]*app.Wechat{
		"control":   app.NewWechat(srv.URL, "wx-app", "wx-secret-value", time.Second),
		"no secret": app.NewWechat(srv.URL, "wx-app", "", time.Second),
		"no app id": app.NewWechat(srv.URL, "", "wx-secret-value", time.Second),
	} {
		before := calls.Load()
		_, err := c.Code2Session(context.Background(), "code")
		var me *models.Error
		switch {
		case name == "control" && (err != nil || calls.Load() != before+1):
			t.Fatalf("control: %v, %d calls", err, calls.Load()-before)
		case name != "control" && (!errors.As(err, &me) || me.Code != models.EUnavailable || !strings.Contains(me.Message, "not configured") || calls.Load() != before):
			t.Fatalf("%s: %v, %d calls", name, err, calls.Load()-before)
		}
	}
}
