package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"gorm.io/gorm"

	"partyledger/models"
)

// Token audiences: an access token opens the API, a bind token only POST /auth/wechat/bind.
const (
	tokenIssuer    = "partyledger"
	audienceAccess = "partyledger-api"
	audienceBind   = "partyledger-bind"
	bindTTL        = 10 * time.Minute
	// maxTokenLen bounds what the parser looks at; real tokens are a few hundred bytes.
	maxTokenLen = 4096
)

// TokenPair is what a successful log-in returns.
type TokenPair struct {
	Status       string `json:"status"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

// Tokens issues and checks access tokens (HS256 JWTs) and refresh tokens (opaque, stored hashed).
type Tokens struct {
	db         *DB
	key        []byte
	accessTTL  time.Duration
	refreshTTL time.Duration
	parser     *jwt.Parser
	bindParser *jwt.Parser
	now        func() time.Time
	verified   verifiedTokens
}

// verifiedTokens remembers access tokens whose signature and claims were checked, until
// they expire: parsing a JWT (HMAC and two JSON decodes) is the largest CPU cost of an
// authenticated request. A token is a fixed string, so a hit is exactly the token that
// was verified; expiry is still checked on every hit.
type verifiedTokens struct {
	mu sync.RWMutex
	m  map[string]verifiedToken
}

type verifiedToken struct {
	memberID int64
	exp      time.Time
}

const maxVerifiedTokens = 20_000

// NewTokens returns a Tokens signing with key.
func NewTokens(db *DB, key []byte, accessTTL, refreshTTL time.Duration) *Tokens {
	t := &Tokens{db: db, key: key, accessTTL: accessTTL, refreshTTL: refreshTTL, now: time.Now}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(30 * time.Second),
		jwt.WithTimeFunc(func() time.Time { return t.now() }),
	}
	t.parser = jwt.NewParser(append(opts, jwt.WithAudience(audienceAccess))...)
	t.bindParser = jwt.NewParser(append(opts, jwt.WithAudience(audienceBind))...)
	return t
}

func (t *Tokens) sign(subject, audience string, ttl time.Duration) (string, error) {
	now := t.now()
	claims := jwt.RegisteredClaims{
		Issuer:    tokenIssuer,
		Subject:   subject,
		Audience:  jwt.ClaimStrings{audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

func (t *Tokens) keyFunc(*jwt.Token) (any, error) { return t.key, nil }

var errBadToken = &models.Error{Code: models.EUnauthorized, Message: "the access token is missing, malformed or expired"}

// ParseAccess checks an access token and returns the member id it was issued to.
// Returns EUnauthorized.
func (t *Tokens) ParseAccess(s string) (int64, error) {
	if len(s) == 0 || len(s) > maxTokenLen {
		return 0, errBadToken
	}
	now := t.now()
	t.verified.mu.RLock()
	v, ok := t.verified.m[s]
	t.verified.mu.RUnlock()
	if ok && now.Before(v.exp) {
		return v.memberID, nil
	}
	var claims jwt.RegisteredClaims
	if _, err := t.parser.ParseWithClaims(s, &claims, t.keyFunc); err != nil {
		return 0, errBadToken
	}
	id, err := strconv.ParseInt(claims.Subject, 10, 64)
	if err != nil || id <= 0 {
		return 0, errBadToken
	}
	// Remember it until its expiry (the parser's leeway is not extended to hits).
	t.verified.mu.Lock()
	if len(t.verified.m) >= maxVerifiedTokens || t.verified.m == nil {
		t.verified.m = make(map[string]verifiedToken, 1024)
	}
	t.verified.m[s] = verifiedToken{memberID: id, exp: claims.ExpiresAt.Time}
	t.verified.mu.Unlock()
	return id, nil
}

// issueBind returns a short-lived token that lets the holder of a WeChat openid bind it.
func (t *Tokens) issueBind(openid string) (string, error) {
	return t.sign(openid, audienceBind, bindTTL)
}

// parseBind returns the openid a bind token carries. Returns EUnauthorized.
func (t *Tokens) parseBind(s string) (string, error) {
	var claims jwt.RegisteredClaims
	if len(s) > maxTokenLen {
		return "", models.Errorf(models.EUnauthorized, "the bind token is invalid or expired; log in with WeChat again")
	}
	if _, err := t.bindParser.ParseWithClaims(s, &claims, t.keyFunc); err != nil || claims.Subject == "" {
		return "", models.Errorf(models.EUnauthorized, "the bind token is invalid or expired; log in with WeChat again")
	}
	return claims.Subject, nil
}

// randomBytes returns n bytes from the OS's randomness.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the OS's randomness is gone; nothing is safe
	}
	return b
}

// randomToken returns n random bytes, base64url encoded.
func randomToken(n int) string { return base64.RawURLEncoding.EncodeToString(randomBytes(n)) }

// randomHex returns n random bytes, hex encoded.
func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

// hashSecret is how refresh tokens and invite codes are stored: SHA-256, hex. They are
// long random strings, so a fast hash is enough (no dictionary to guard against).
func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// issuePair starts or continues a login family for memberID inside tx.
func (t *Tokens) issuePair(tx *gorm.DB, memberID int64, family string) (TokenPair, error) {
	access, err := t.sign(strconv.FormatInt(memberID, 10), audienceAccess, t.accessTTL)
	if err != nil {
		return TokenPair{}, err
	}
	if family == "" {
		family = randomHex(16)
	}
	refresh := "rt_" + randomToken(32)
	now := t.now().UTC()
	rt := models.RefreshToken{FamilyID: family, MemberID: memberID, TokenHash: hashSecret(refresh), ExpiresAt: now.Add(t.refreshTTL), CreatedAt: now}
	if err := tx.Create(&rt).Error; err != nil {
		return TokenPair{}, dbError("issue refresh token", err)
	}
	return TokenPair{Status: "bound", AccessToken: access, RefreshToken: refresh, TokenType: "Bearer", ExpiresIn: int(t.accessTTL / time.Second)}, nil
}

// NewSession issues a fresh token pair (a new login family) for memberID.
func (t *Tokens) NewSession(ctx context.Context, memberID int64) (TokenPair, error) {
	return t.issuePair(t.db.W.WithContext(ctx), memberID, "")
}

// logIn issues a fresh token pair for member m, who has just proved who they are by
// method ("wechat", "demo", "password") from clientIP, and audits it ("auth.login"),
// under their branch, in the same transaction: who logged in when, how and from where.
func (t *Tokens) logIn(ctx context.Context, m models.Member, method, clientIP string) (TokenPair, error) {
	var pair TokenPair
	err := t.db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if pair, err = t.issuePair(tx, m.ID, ""); err != nil {
			return err
		}
		return writeAudit(tx, &m.ID, &m.BranchID, "auth.login", "member", m.ID, nil, map[string]string{"method": method, "ip": clientIP})
	})
	return pair, dbError("log in", err)
}

var errBadRefresh = &models.Error{Code: models.EUnauthorized, Message: "the refresh token is invalid, expired or revoked; log in again"}

// Refresh spends a refresh token and returns the next pair of its family. Presenting a
// token that was already spent revokes the whole family, since one of its holders is not
// the member; that is audited ("auth.token_reused", by nobody, with clientIP). Returns
// EUnauthorized.
func (t *Tokens) Refresh(ctx context.Context, clientIP, refresh string) (TokenPair, error) {
	if len(refresh) < 10 || len(refresh) > 200 {
		return TokenPair{}, errBadRefresh
	}
	var pair TokenPair
	reused := false
	var family string
	var member int64
	err := t.db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rt models.RefreshToken
		if err := tx.Where("token_hash = ?", hashSecret(refresh)).Take(&rt).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return errBadRefresh
			}
			return dbError("refresh", err)
		}
		now := t.now().UTC()
		if rt.RevokedAt != nil || !now.Before(rt.ExpiresAt) {
			return errBadRefresh
		}
		family, member = rt.FamilyID, rt.MemberID
		// Compare-and-set: of two concurrent refreshes with one token, one wins.
		res := tx.Model(&models.RefreshToken{}).Where("id = ? AND used_at IS NULL AND revoked_at IS NULL", rt.ID).Update("used_at", now)
		if res.Error != nil {
			return dbError("refresh", res.Error)
		}
		if res.RowsAffected == 0 {
			reused = true
			return errBadRefresh
		}
		var status string
		if err := tx.Model(&models.Member{}).Where("id = ?", rt.MemberID).Pluck("status", &status).Error; err != nil {
			return dbError("refresh", err)
		}
		if status != string(models.StatusActive) {
			return errBadRefresh
		}
		var err error
		pair, err = t.issuePair(tx, rt.MemberID, rt.FamilyID)
		return err
	})
	if reused {
		if rerr := t.revokeFamily(ctx, member, nil, family, "auth.token_reused", map[string]string{"ip": clientIP}); rerr != nil {
			return TokenPair{}, rerr
		}
	}
	return pair, err
}

// revokeFamily revokes the live tokens of a login family of member's, and audits it as
// action by actor (nil: nobody) with what, and how many tokens it revoked, under the
// member's branch, in the same transaction.
func (t *Tokens) revokeFamily(ctx context.Context, member int64, actor *int64, family, action string, what map[string]string) error {
	err := t.db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&models.RefreshToken{}).Where("family_id = ? AND revoked_at IS NULL", family).Update("revoked_at", t.now().UTC())
		if res.Error != nil {
			return res.Error
		}
		var branch int64
		if err := tx.Model(&models.Member{}).Where("id = ?", member).Pluck("branch_id", &branch).Error; err != nil {
			return err
		}
		after := map[string]any{"revoked": res.RowsAffected}
		for k, v := range what {
			after[k] = v
		}
		return writeAudit(tx, actor, &branch, action, "member", member, nil, after)
	})
	return dbError("revoke token family", err)
}

// Logout revokes the login family of a refresh token that belongs to memberID, audited
// as "auth.logout" with clientIP. Returns ENotFound when the token is not one of the
// member's.
func (t *Tokens) Logout(ctx context.Context, clientIP string, memberID int64, refresh string) error {
	var rt models.RefreshToken
	err := t.db.W.WithContext(ctx).Where("token_hash = ? AND member_id = ?", hashSecret(refresh), memberID).Take(&rt).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return models.Errorf(models.ENotFound, "no such refresh token")
	}
	if err != nil {
		return dbError("logout", err)
	}
	return t.revokeFamily(ctx, memberID, &memberID, rt.FamilyID, "auth.logout", map[string]string{"ip": clientIP})
}

// PurgeRefreshTokens deletes the refresh tokens that expired before now, a thousand at a
// time, and returns how many. Every log-in and refresh adds a row, and spent ones stay
// (a spent token presented again revokes its family), so the table would grow for ever.
// An expired token is refused whether or not its row is there, so deleting it changes
// no answer.
func PurgeRefreshTokens(ctx context.Context, db *DB, now time.Time) (int, error) {
	purged := 0
	for {
		var ids []int64
		err := db.R.WithContext(ctx).Model(&models.RefreshToken{}).Where("expires_at < ?", now.UTC()).
			Order("expires_at").Limit(1000).Pluck("id", &ids).Error
		if err != nil || len(ids) == 0 {
			return purged, dbError("purge refresh tokens", err)
		}
		res := db.W.WithContext(ctx).Where("id IN ? AND expires_at < ?", ids, now.UTC()).Delete(&models.RefreshToken{})
		if res.Error != nil {
			return purged, dbError("purge refresh tokens", res.Error)
		}
		purged += int(res.RowsAffected)
		if len(ids) < 1000 {
			return purged, nil
		}
	}
}
