package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"partyledger/models"
)

// WechatSession is what code2session tells us. The session_key WeChat also returns is
// deliberately not kept: the service never needs it, so it can never leak.
type WechatSession struct {
	OpenID  string
	UnionID string
}

// Wechat is a small client of WeChat's jscode2session endpoint.
type Wechat struct {
	baseURL string
	appID   string
	secret  string
	client  *http.Client
}

// NewWechat returns a client of the WeChat API at baseURL; a call that takes longer
// than timeout (5 s in production) counts as WeChat being unreachable.
func NewWechat(baseURL, appID, secret string, timeout time.Duration) *Wechat {
	return &Wechat{baseURL: strings.TrimRight(baseURL, "/"), appID: appID, secret: secret, client: &http.Client{Timeout: timeout}}
}

// Code2Session exchanges a wx.login code for the user's openid.
// Returns EUnauthorized (invalid or used code), EForbidden (WeChat flags the user),
// ERateLimited, EUnavailable (busy, unreachable or timed out) or EBadGateway (a reply
// that makes no sense). Errors never carry the AppSecret or the request URL.
func (w *Wechat) Code2Session(ctx context.Context, code string) (WechatSession, error) {
	if w.appID == "" || w.secret == "" {
		return WechatSession{}, &models.Error{Code: models.EUnavailable, Message: "WeChat log-in is not configured on this server",
			Err: errors.New("LEDGER_WECHAT_APPID or LEDGER_WECHAT_SECRET is unset")}
	}
	q := url.Values{"appid": {w.appID}, "secret": {w.secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.baseURL+"/sns/jscode2session?"+q.Encode(), nil)
	if err != nil {
		return WechatSession{}, fmt.Errorf("wechat code2session: build request: %w", errors.New("bad base URL"))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// *url.Error quotes the URL, and the URL holds the secret: keep only the cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return WechatSession{}, &models.Error{Code: models.EUnavailable, Message: "WeChat could not be reached, try again", RetryAfter: 5,
			Err: fmt.Errorf("wechat code2session: %w", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return WechatSession{}, &models.Error{Code: models.EUnavailable, Message: "WeChat could not be reached, try again", RetryAfter: 5,
			Err: fmt.Errorf("wechat code2session: read body: %w", err)}
	}
	badGateway := func(why string) error {
		return &models.Error{Code: models.EBadGateway, Message: "WeChat answered in a way this server does not understand",
			Err: fmt.Errorf("wechat code2session: %s (HTTP %d, %d bytes)", why, resp.StatusCode, len(body))}
	}
	if resp.StatusCode >= 500 {
		return WechatSession{}, &models.Error{Code: models.EUnavailable, Message: "WeChat is busy, try again", RetryAfter: 5,
			Err: fmt.Errorf("wechat code2session: HTTP %d", resp.StatusCode)}
	}
	if resp.StatusCode != http.StatusOK {
		return WechatSession{}, badGateway("unexpected status")
	}
	var r struct {
		OpenID  string `json:"openid"`
		UnionID string `json:"unionid"`
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	// WeChat labels its JSON text/plain, so the body decides, not the header.
	if err := json.Unmarshal(body, &r); err != nil {
		return WechatSession{}, badGateway("body is not JSON")
	}
	switch r.ErrCode {
	case 0:
		if r.OpenID == "" || len(r.OpenID) > 128 {
			return WechatSession{}, badGateway("no openid")
		}
		return WechatSession{OpenID: r.OpenID, UnionID: r.UnionID}, nil
	case 40029, 40163: // invalid code; code already used
		return WechatSession{}, models.Errorf(models.EUnauthorized, "the WeChat log-in code is invalid or was already used; call wx.login again")
	case 40226: // high-risk user blocked by WeChat
		return WechatSession{}, models.Errorf(models.EForbidden, "WeChat refused this account")
	case 45011: // frequency limit
		return WechatSession{}, &models.Error{Code: models.ERateLimited, Message: "too many log-ins, wait a minute", RetryAfter: 60}
	case -1: // system busy
		return WechatSession{}, &models.Error{Code: models.EUnavailable, Message: "WeChat is busy, try again", RetryAfter: 5,
			Err: errors.New("wechat code2session: errcode -1 (busy)")}
	}
	return WechatSession{}, badGateway(fmt.Sprintf("errcode %d", r.ErrCode))
}
