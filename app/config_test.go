package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"partyledger/app"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigGeneratesAndKeepsTheSigningKey(t *testing.T) {
	dir := t.TempDir()
	c1, err := app.LoadConfig(env(map[string]string{"LEDGER_DATA_DIR": dir}))
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "jwt.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	c2, err := app.LoadConfig(env(map[string]string{"LEDGER_DATA_DIR": dir}))
	if err != nil || string(c1.JWTSecret) != string(c2.JWTSecret) || len(c1.JWTSecret) < 32 {
		t.Fatal("the key is not kept across starts")
	}
	if c1.Addr != ":8080" || c1.DBDriver != "sqlite" || c1.DBDSN != filepath.Join(dir, "ledger.db") || c1.Location.String() != "Asia/Shanghai" || c1.Demo {
		t.Fatalf("defaults: %+v", c1)
	}
	if c1.ClaimPerMember != (app.RateLimit{N: 30, Per: time.Minute}) || c1.ClaimPerIP != (app.RateLimit{N: 600, Per: time.Minute}) ||
		c1.UploadPerMember != (app.RateLimit{N: 60, Per: time.Hour}) || c1.UploadPerIP != (app.RateLimit{N: 3000, Per: time.Hour}) {
		t.Fatalf("default limits: claims %v and %v, uploads %v and %v", c1.ClaimPerMember, c1.ClaimPerIP, c1.UploadPerMember, c1.UploadPerIP)
	}
	if c1.UploadKeep != 72*time.Hour {
		t.Fatalf("unused photos kept %v by default, want 72h", c1.UploadKeep)
	}
	os.Chmod(filepath.Join(dir, "jwt.key"), 0o644)
	if _, err := app.LoadConfig(env(map[string]string{"LEDGER_DATA_DIR": dir})); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key was accepted: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "jwt.key"), []byte("too-short-a-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "jwt.key"), 0o600) // WriteFile keeps the file's old mode
	if _, err := app.LoadConfig(env(map[string]string{"LEDGER_DATA_DIR": dir})); err == nil || !strings.Contains(err.Error(), "shorter than 32") {
		t.Fatalf("a short key file was accepted: %v", err)
	}
}

// Processes that start at once on a new data folder (the server and ledgerctl, or
// replicas sharing it) all end up with the one key the file keeps: none reads a key
// half-written, and no temporary file stays.
func TestConfigKeyCreatedOnceUnderARace(t *testing.T) {
	for round := 0; round < 20; round++ {
		dir := t.TempDir()
		keys := make(chan string, 8)
		errs := make(chan error, 8)
		for i := 0; i < 8; i++ {
			go func() {
				c, err := app.LoadConfig(env(map[string]string{"LEDGER_DATA_DIR": dir}))
				if err != nil {
					errs <- err
					return
				}
				keys <- string(c.JWTSecret)
			}()
		}
		var first string
		for i := 0; i < 8; i++ {
			select {
			case err := <-errs:
				t.Fatalf("round %d: %v", round, err)
			case k := <-keys:
				if first == "" {
					first = k
				} else if k != first {
					t.Fatalf("round %d: two processes got two keys", round)
				}
			}
		}
		file, err := os.ReadFile(filepath.Join(dir, "jwt.key"))
		if err != nil || strings.TrimSpace(string(file)) != first {
			t.Fatalf("round %d: the file keeps another key than the one in use (%v)", round, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Fatalf("round %d: the data folder holds %d files, want the key alone", round, len(ents))
		}
	}
}

func TestConfigRefusesBadValues(t *testing.T) {
	dir := t.TempDir()
	for name, vars := range map[string]map[string]string{
		"mysql without DSN":  {"LEDGER_DB_DRIVER": "mysql"},
		"unknown driver":     {"LEDGER_DB_DRIVER": "postgres"},
		"short secret":       {"LEDGER_JWT_SECRET": "short"},
		"bad timezone":       {"LEDGER_TIMEZONE": "Mars/Olympus"},
		"half an admin":      {"LEDGER_ADMIN_USERNAME": "root"},
		"short password":     {"LEDGER_ADMIN_USERNAME": "root", "LEDGER_ADMIN_PASSWORD": "short"},
		"long password":      {"LEDGER_ADMIN_USERNAME": "root", "LEDGER_ADMIN_PASSWORD": strings.Repeat("p", 73)},
		"WeChat app id only": {"LEDGER_WECHAT_APPID": "wx0123456789abcdef"},
		"WeChat secret only": {"LEDGER_WECHAT_SECRET": "0123456789abcdef0123456789abcdef"},
		"bad proxy":          {"LEDGER_TRUSTED_PROXIES": "not-an-ip"},
		"bad duration":       {"LEDGER_ACCESS_TTL": "forever"},
		"negative duration":  {"LEDGER_REFRESH_TTL": "-1h"},
		"no publicity":       {"LEDGER_PUBLICITY_DAYS": "0"},
		"three stars":        {"LEDGER_STAR_THRESHOLDS": "10,20,30"},
		"falling stars":      {"LEDGER_STAR_THRESHOLDS": "60,50,180,240"},
		"fractional stars":   {"LEDGER_STAR_THRESHOLDS": "60,120.25,180,240"},
		"report of nothing":  {"LEDGER_REPORT_MAX_ROWS": "0"},
		"bad claim limit":    {"LEDGER_CLAIM_LIMIT_MEMBER": "lots"},
		"no connections":     {"LEDGER_DB_MAX_CONNS": "0"},
		"too many conns":     {"LEDGER_DB_MAX_CONNS": "1001"},
		"no demo months":     {"LEDGER_DEMO_MONTHS": "0"},
		"13 demo months":     {"LEDGER_DEMO_MONTHS": "13"},
		"year of publicity":  {"LEDGER_PUBLICITY_DAYS": "61"},
		"huge report":        {"LEDGER_REPORT_MAX_ROWS": "1000001"},
		"zero claims":        {"LEDGER_CLAIM_LIMIT_IP": "0/1m"},
		"bad upload limit":   {"LEDGER_UPLOAD_LIMIT_MEMBER": "60"},
		"zero uploads":       {"LEDGER_UPLOAD_LIMIT_IP": "0/1h"},
		"photos kept 0s":     {"LEDGER_UPLOAD_KEEP": "0"},
		"photos kept 5m":     {"LEDGER_UPLOAD_KEEP": "5m"},
		"zero period":        {"LEDGER_LOGIN_LIMIT_USER": "5/0s"},
		"negative period":    {"LEDGER_LOGIN_LIMIT_IP": "5/-1m"},
		"a star at zero":     {"LEDGER_STAR_THRESHOLDS": "0,120,180,240"},
	} {
		t.Run(name, func(t *testing.T) {
			vars["LEDGER_DATA_DIR"] = dir
			if _, err := app.LoadConfig(env(vars)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	c, err := app.LoadConfig(env(map[string]string{"LEDGER_DATA_DIR": dir, "LEDGER_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1", "LEDGER_JWT_SECRET": strings.Repeat("k", 32),
		"LEDGER_STAR_THRESHOLDS": "50, 100.5,150,200"}))
	if err != nil || len(c.TrustedProxies) != 2 || string(c.JWTSecret) != strings.Repeat("k", 32) || c.StarThresholds[1] != 1005 ||
		c.PublicityDays != 5 || c.ReportMaxRows != 50_000 {
		t.Fatalf("%+v %v", c, err)
	}
}
