// Package app holds the use cases of the points ledger: configuration, the database,
// identity (WeChat, passwords, tokens), the org tree and the roster. It owns transactions
// and turns database errors into *models.Error. It never imports the HTTP framework.
package app

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"partyledger/models"
)

// Config is the service's configuration, read from the environment (see README).
type Config struct {
	Addr           string
	DBDriver       string // "sqlite" or "mysql"
	DBDSN          string
	DataDir        string
	JWTSecret      []byte
	WechatAppID    string
	WechatSecret   string
	WechatBaseURL  string
	Location       *time.Location
	AdminUsername  string
	AdminPassword  string
	Demo           bool
	TrustedProxies []netip.Prefix
	AccessTTL      time.Duration
	RefreshTTL     time.Duration
	InviteTTL      time.Duration
	DBWait         time.Duration
	DBMaxConns     int
	DemoMonths     int // months of demo activity: this one and the ones before it
	// PublicityDays is how long a closed month stays published (公示) for appeals.
	PublicityDays int
	// StarThresholds are the year totals that earn a 2nd, 3rd, 4th and 5th star.
	StarThresholds []models.Points
	// ReportMaxRows caps the member rows of one monthly report.
	ReportMaxRows int
	WechatTimeout time.Duration
	// RequestTimeout bounds the database work of one request: past it the request gets
	// 503 instead of waiting on a database that has stopped answering.
	RequestTimeout time.Duration
	// Log-in attempts allowed per username and per client IP: N per Per.
	LoginPerUser RateLimit
	LoginPerIP   RateLimit
	// Claim submissions allowed per member and per client IP.
	ClaimPerMember RateLimit
	ClaimPerIP     RateLimit
	// Evidence photos allowed per member and per client IP.
	UploadPerMember RateLimit
	UploadPerIP     RateLimit
	// UploadKeep is how long a photo no claim uses is kept before the sweep removes it.
	UploadKeep time.Duration
	LogLevel   string
}

// DefaultWechatBaseURL is WeChat's API host; tests point LEDGER_WECHAT_BASE_URL at a fake.
const DefaultWechatBaseURL = "https://api.weixin.qq.com"

// LoadConfig reads the configuration through getenv. When LEDGER_JWT_SECRET is unset it
// reads the key from DataDir/jwt.key, generating it (mode 0600) on first start.
// Returns a *models.Error-free plain error describing the bad variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	get := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		Addr:          get("LEDGER_ADDR", ":8080"),
		DBDriver:      get("LEDGER_DB_DRIVER", "sqlite"),
		DataDir:       get("LEDGER_DATA_DIR", "data"),
		WechatAppID:   getenv("LEDGER_WECHAT_APPID"),
		WechatSecret:  getenv("LEDGER_WECHAT_SECRET"),
		WechatBaseURL: strings.TrimRight(get("LEDGER_WECHAT_BASE_URL", DefaultWechatBaseURL), "/"),
		AdminUsername: strings.TrimSpace(getenv("LEDGER_ADMIN_USERNAME")),
		AdminPassword: getenv("LEDGER_ADMIN_PASSWORD"),
		Demo:          getenv("LEDGER_DEMO") == "1",
		LogLevel:      get("LEDGER_LOG_LEVEL", "info"),
	}
	switch c.DBDriver {
	case "sqlite":
		c.DBDSN = get("LEDGER_DB_DSN", filepath.Join(c.DataDir, "ledger.db"))
	case "mysql":
		c.DBDSN = getenv("LEDGER_DB_DSN")
		if c.DBDSN == "" {
			return c, errors.New("config: LEDGER_DB_DSN is required when LEDGER_DB_DRIVER=mysql")
		}
	default:
		return c, fmt.Errorf("config: LEDGER_DB_DRIVER must be sqlite or mysql, not %q", c.DBDriver)
	}
	loc, err := time.LoadLocation(get("LEDGER_TIMEZONE", "Asia/Shanghai"))
	if err != nil {
		return c, fmt.Errorf("config: LEDGER_TIMEZONE: %w", err)
	}
	c.Location = loc
	for _, d := range []struct {
		key string
		def time.Duration
		dst *time.Duration
	}{
		{"LEDGER_ACCESS_TTL", 15 * time.Minute, &c.AccessTTL},
		{"LEDGER_REFRESH_TTL", 30 * 24 * time.Hour, &c.RefreshTTL},
		{"LEDGER_INVITE_TTL", 7 * 24 * time.Hour, &c.InviteTTL},
		{"LEDGER_DB_WAIT", 30 * time.Second, &c.DBWait},
		{"LEDGER_WECHAT_TIMEOUT", 5 * time.Second, &c.WechatTimeout},
		{"LEDGER_REQUEST_TIMEOUT", 10 * time.Second, &c.RequestTimeout},
		{"LEDGER_UPLOAD_KEEP", 72 * time.Hour, &c.UploadKeep},
	} {
		*d.dst = d.def
		if v := getenv(d.key); v != "" {
			if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst <= 0 {
				return c, fmt.Errorf("config: %s must be a positive duration such as 15m", d.key)
			}
		}
	}
	if c.UploadKeep < time.Hour {
		// Members upload a photo and then fill in its claim; and a file younger than the
		// keep may be a photo whose row is on its way (Uploads.Strays).
		return c, errors.New("config: LEDGER_UPLOAD_KEEP must be at least 1h")
	}
	if v := getenv("LEDGER_DB_MAX_CONNS"); v != "" {
		if c.DBMaxConns, err = strconv.Atoi(v); err != nil || c.DBMaxConns < 1 || c.DBMaxConns > 1000 {
			return c, errors.New("config: LEDGER_DB_MAX_CONNS must be a whole number from 1 to 1000")
		}
	}
	if c.PublicityDays, err = intVar(getenv, "LEDGER_PUBLICITY_DAYS", 5, 1, 60); err != nil {
		return c, err
	}
	if c.ReportMaxRows, err = intVar(getenv, "LEDGER_REPORT_MAX_ROWS", 50_000, 1, 1_000_000); err != nil {
		return c, err
	}
	if c.StarThresholds, err = parseStars(get("LEDGER_STAR_THRESHOLDS", "60,120,180,240")); err != nil {
		return c, err
	}
	c.DemoMonths = 4
	if v := getenv("LEDGER_DEMO_MONTHS"); v != "" {
		if c.DemoMonths, err = strconv.Atoi(v); err != nil || c.DemoMonths < 1 || c.DemoMonths > 12 {
			return c, errors.New("config: LEDGER_DEMO_MONTHS must be a whole number from 1 to 12")
		}
	}
	if c.LoginPerUser, err = parseRate(get("LEDGER_LOGIN_LIMIT_USER", "5/1m")); err != nil {
		return c, fmt.Errorf("config: LEDGER_LOGIN_LIMIT_USER: %w", err)
	}
	if c.ClaimPerMember, err = parseRate(get("LEDGER_CLAIM_LIMIT_MEMBER", "30/1m")); err != nil {
		return c, fmt.Errorf("config: LEDGER_CLAIM_LIMIT_MEMBER: %w", err)
	}
	if c.ClaimPerIP, err = parseRate(get("LEDGER_CLAIM_LIMIT_IP", "600/1m")); err != nil {
		return c, fmt.Errorf("config: LEDGER_CLAIM_LIMIT_IP: %w", err)
	}
	if c.UploadPerMember, err = parseRate(get("LEDGER_UPLOAD_LIMIT_MEMBER", "60/1h")); err != nil {
		return c, fmt.Errorf("config: LEDGER_UPLOAD_LIMIT_MEMBER: %w", err)
	}
	if c.UploadPerIP, err = parseRate(get("LEDGER_UPLOAD_LIMIT_IP", "3000/1h")); err != nil {
		return c, fmt.Errorf("config: LEDGER_UPLOAD_LIMIT_IP: %w", err)
	}
	if c.LoginPerIP, err = parseRate(get("LEDGER_LOGIN_LIMIT_IP", "30/1m")); err != nil {
		return c, fmt.Errorf("config: LEDGER_LOGIN_LIMIT_IP: %w", err)
	}
	for _, s := range strings.Split(getenv("LEDGER_TRUSTED_PROXIES"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return c, fmt.Errorf("config: LEDGER_TRUSTED_PROXIES: %q is neither an address nor a CIDR", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, p.Masked())
	}
	if (c.AdminUsername == "") != (c.AdminPassword == "") {
		return c, errors.New("config: set both LEDGER_ADMIN_USERNAME and LEDGER_ADMIN_PASSWORD, or neither")
	}
	if c.AdminPassword != "" && len(c.AdminPassword) < minPasswordBytes {
		return c, errors.New("config: LEDGER_ADMIN_PASSWORD must have at least 8 characters")
	}
	if len(c.AdminPassword) > maxPasswordBytes {
		return c, errors.New("config: LEDGER_ADMIN_PASSWORD must have at most 72 bytes (bcrypt's limit)")
	}
	// Half a pair would start a server whose every WeChat log-in fails; say so now.
	if (c.WechatAppID == "") != (c.WechatSecret == "") {
		return c, errors.New("config: set both LEDGER_WECHAT_APPID and LEDGER_WECHAT_SECRET, or neither")
	}
	if s := getenv("LEDGER_JWT_SECRET"); s != "" {
		if len(s) < 32 {
			return c, errors.New("config: LEDGER_JWT_SECRET must have at least 32 characters")
		}
		c.JWTSecret = []byte(s)
	} else if c.JWTSecret, err = loadOrCreateKey(filepath.Join(c.DataDir, "jwt.key")); err != nil {
		return c, err
	}
	return c, nil
}

// loadOrCreateKey reads the signing key at path, creating a random one with mode 0600 if
// the file does not exist. A key file others can read is refused.
func loadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		st, serr := os.Stat(path)
		if serr == nil && st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("config: %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
		}
		key := []byte(strings.TrimSpace(string(b)))
		if len(key) < 32 {
			return nil, fmt.Errorf("config: %s holds a key shorter than 32 characters", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("config: create %s: %w", filepath.Dir(path), err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("config: generate key: %w", err)
	}
	key := []byte(hex.EncodeToString(raw))
	// The key is written whole and flushed under a temporary name, then linked to its
	// own: the name appears with the whole key behind it or not at all. Another process
	// starting at once (the server and ledgerctl) never reads a half-written key, and a
	// crash never leaves an empty one that stops every later start.
	tmp, err := WriteTemp(filepath.Dir(path), ".jwt.key.", 0o600, func(f *os.File) error {
		_, err := f.Write(append(key, '\n'))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("config: write %s: %w", path, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race: use its key
			return loadOrCreateKey(path)
		}
		return nil, fmt.Errorf("config: create %s: %w (a folder without hard links: set LEDGER_JWT_SECRET instead)", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("config: write %s: %w", path, err)
	}
	return key, nil
}

// RateLimit is N events per Per, with bursts of up to N.
type RateLimit struct {
	N   int
	Per time.Duration
}

// parseRate reads "N/duration", such as "5/1m".
func parseRate(s string) (RateLimit, error) {
	n, per, ok := strings.Cut(s, "/")
	var r RateLimit
	var err error
	if ok {
		r.N, err = strconv.Atoi(n)
	}
	if ok && err == nil {
		r.Per, err = time.ParseDuration(per)
	}
	if !ok || err != nil || r.N < 1 || r.Per <= 0 {
		return r, fmt.Errorf("%q is not N/duration, such as 5/1m", s)
	}
	return r, nil
}

// intVar reads a whole number from min to max, def when unset.
func intVar(getenv func(string) string, key string, def, lo, hi int) (int, error) {
	v := getenv(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return def, fmt.Errorf("config: %s must be a whole number from %d to %d", key, lo, hi)
	}
	return n, nil
}

// parseStars reads four rising year totals, such as "60,120,180,240".
func parseStars(s string) ([]models.Points, error) {
	bad := errors.New("config: LEDGER_STAR_THRESHOLDS must be four rising year totals, such as 60,120,180,240")
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return nil, bad
	}
	out := make([]models.Points, 4)
	for i, p := range parts {
		v, err := models.ParsePoints(strings.TrimSpace(p))
		if err != nil || v <= 0 || (i > 0 && v <= out[i-1]) {
			return nil, bad
		}
		out[i] = v
	}
	return out, nil
}
