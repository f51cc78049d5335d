package app

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"partyledger/models"
)

// Code2Sessioner exchanges a wx.login code for an openid (the WeChat client, or a fake).
type Code2Sessioner interface {
	Code2Session(ctx context.Context, code string) (WechatSession, error)
}

// Identity holds the log-in flows: WeChat, invite-code binding, staff passwords, refresh
// and log-out, and reading the caller of a request.
type Identity struct {
	db      *DB
	tokens  *Tokens
	wechat  Code2Sessioner
	demo    bool
	actors  *actorLoader
	byUser  *Limiter
	byIP    *Limiter
	bindIP  *Limiter
	loginIP *Limiter
	log     *slog.Logger
	now     func() time.Time
	// dummyHash is compared against when a username is unknown, so that both cases take
	// the time of one bcrypt comparison and timing does not tell which usernames exist.
	dummyHash []byte
}

// NewIdentity wires the identity use cases. In demo mode, codes "demo:<member_no>" log
// that member in without calling WeChat.
func NewIdentity(db *DB, tokens *Tokens, wechat Code2Sessioner, demo bool, perUser, perIP RateLimit, log *slog.Logger) *Identity {
	dummy, _ := bcrypt.GenerateFromPassword([]byte(randomToken(12)), bcrypt.DefaultCost)
	return &Identity{
		db: db, tokens: tokens, wechat: wechat, demo: demo, log: log, now: time.Now,
		actors:    newActorLoader(db.sqlR, db.Driver == "mysql"),
		byUser:    NewLimiter(perUser.N, perUser.Per, perUser.N),
		byIP:      NewLimiter(perIP.N, perIP.Per, perIP.N),
		bindIP:    NewLimiter(10, time.Minute, 10),
		loginIP:   NewLimiter(60, time.Minute, 60),
		dummyHash: dummy,
	}
}

// Actor reads the caller identified by an access token's member id.
// Returns EUnauthorized or EUnavailable.
func (s *Identity) Actor(ctx context.Context, memberID int64) (*Actor, error) {
	return s.actors.LoadActor(ctx, memberID)
}

// SpeculativeActor returns the cached copy of the caller, if there is one, for a read with
// no side effects to start on while the copy is checked (see actorLoader.Speculate).
func (s *Identity) SpeculativeActor(ctx context.Context, memberID int64) (a *Actor, confirm func() (*Actor, error), ok bool) {
	return s.actors.Speculate(ctx, memberID)
}

// CachedActor returns the cached copy of the caller, if there is one, without asking the
// database whether it is current: only for a write whose transaction checks that itself
// (ErrActorChanged).
func (s *Identity) CachedActor(memberID int64) (*Actor, bool) {
	return s.actors.Cached(memberID)
}

// Tokens returns the token service.
func (s *Identity) Tokens() *Tokens { return s.tokens }

// LoginResult is the answer to a WeChat log-in: tokens when the openid is bound to a
// member, otherwise a bind token to present with an invite code.
type LoginResult struct {
	Tokens    *TokenPair
	BindToken string
}

func validCode(code string) bool {
	if code == "" || len(code) > 128 {
		return false
	}
	for _, r := range code {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return true
}

// WechatLogin exchanges a wx.login code. Returns EInvalid, EUnauthorized, EForbidden,
// ERateLimited, EUnavailable or EBadGateway.
func (s *Identity) WechatLogin(ctx context.Context, clientIP, code string) (LoginResult, error) {
	if !validCode(code) {
		return LoginResult{}, models.InvalidField("code", "must be the code from wx.login (1 to 128 printable characters)")
	}
	if err := s.loginIP.Allow(clientIP); err != nil {
		return LoginResult{}, err
	}
	if s.demo && strings.HasPrefix(code, "demo:") {
		var m models.Member
		err := s.db.R.WithContext(ctx).Where(s.db.memberNoIn("member_no"), []string{strings.TrimPrefix(code, "demo:")}).Take(&m).Error
		if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && m.Status != models.StatusActive) {
			return LoginResult{}, models.Errorf(models.EUnauthorized, "no active demo member has that number")
		}
		if err != nil {
			return LoginResult{}, dbError("demo login", err)
		}
		pair, err := s.tokens.logIn(ctx, m, "demo", clientIP)
		return LoginResult{Tokens: &pair}, err
	}
	sess, err := s.wechat.Code2Session(ctx, code)
	if err != nil {
		return LoginResult{}, err
	}
	var m models.Member
	err = s.db.R.WithContext(ctx).Where("wechat_openid = ?", sess.OpenID).Take(&m).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		bind, err := s.tokens.issueBind(sess.OpenID)
		return LoginResult{BindToken: bind}, err
	case err != nil:
		return LoginResult{}, dbError("wechat login", err)
	case m.Status != models.StatusActive:
		return LoginResult{}, models.Errorf(models.EUnauthorized, "this account is disabled")
	}
	pair, err := s.tokens.logIn(ctx, m, "wechat", clientIP)
	return LoginResult{Tokens: &pair}, err
}

var errBadInvite = &models.Error{Code: models.EInvalid, Message: "the invite code is unknown, used or expired",
	Fields: map[string]string{"invite_code": "unknown, used or expired; ask your branch secretary for a new one"}}

// Bind binds the openid of a bind token to the member holding a one-time invite code
// and logs them in. Returns EInvalid, EUnauthorized, EConflict (the member or the WeChat
// account is bound already) or ERateLimited.
func (s *Identity) Bind(ctx context.Context, clientIP, bindToken, inviteCode string) (TokenPair, error) {
	if err := s.bindIP.Allow(clientIP); err != nil {
		return TokenPair{}, err
	}
	openid, err := s.tokens.parseBind(bindToken)
	if err != nil {
		return TokenPair{}, err
	}
	inviteCode = normaliseInvite(inviteCode)
	if inviteCode == "" {
		return TokenPair{}, errBadInvite
	}
	var pair TokenPair
	err = s.db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := s.now().UTC()
		var inv models.InviteCode
		err := tx.Where("code_hash = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?", hashSecret(inviteCode), now).Take(&inv).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return errBadInvite
		}
		if err != nil {
			return dbError("bind", err)
		}
		// Compare-and-set: a code is spent once even when two binds race.
		res := tx.Model(&models.InviteCode{}).Where("id = ? AND used_at IS NULL", inv.ID).Update("used_at", now)
		if res.Error != nil {
			return dbError("bind", res.Error)
		}
		if res.RowsAffected == 0 {
			return errBadInvite
		}
		res = tx.Model(&models.Member{}).Where("id = ? AND wechat_openid IS NULL AND status = ?", inv.MemberID, models.StatusActive).
			Updates(map[string]any{"wechat_openid": openid, "updated_at": now})
		if res.Error != nil {
			if isDuplicate(res.Error) {
				return models.Errorf(models.EConflict, "this WeChat account is already bound to another member")
			}
			return dbError("bind", res.Error)
		}
		if res.RowsAffected == 0 {
			return models.Errorf(models.EConflict, "this member is already bound to a WeChat account or is disabled")
		}
		// Under the member's branch, so that the admins over it read it.
		var branch int64
		if err := tx.Model(&models.Member{}).Where("id = ?", inv.MemberID).Pluck("branch_id", &branch).Error; err != nil {
			return dbError("bind", err)
		}
		if err := writeAudit(tx, &inv.MemberID, &branch, "member.wechat_bound", "member", inv.MemberID, nil, map[string]any{"invite_id": inv.ID, "ip": clientIP}); err != nil {
			return err
		}
		pair, err = s.tokens.issuePair(tx, inv.MemberID, "")
		return err
	})
	return pair, err
}

// normaliseInvite accepts codes typed with spaces, dashes or lower case.
func normaliseInvite(code string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(code) {
		switch {
		case r == ' ' || r == '-':
		case (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		default:
			return ""
		}
	}
	if b.Len() != inviteLen {
		return ""
	}
	return b.String()
}

var errBadPassword = &models.Error{Code: models.EUnauthorized, Message: "wrong username or password"}

// PasswordLogin logs a staff member in. Attempts are limited per username and per client
// IP before the password is looked at. Returns EInvalid, EUnauthorized or ERateLimited.
func (s *Identity) PasswordLogin(ctx context.Context, clientIP, username, password string) (TokenPair, error) {
	username = strings.TrimSpace(username)
	fields := map[string]string{}
	if username == "" || len(username) > 64 {
		fields["username"] = "is required (at most 64 characters)"
	}
	if password == "" || len(password) > maxPasswordBytes {
		fields["password"] = "is required (at most 72 bytes)"
	}
	if len(fields) > 0 {
		return TokenPair{}, models.Invalid(fields)
	}
	if err := s.byIP.Allow(clientIP); err != nil {
		return TokenPair{}, err
	}
	if err := s.byUser.Allow(strings.ToLower(username)); err != nil {
		return TokenPair{}, err
	}
	// Usernames match without regard to case on both databases: MySQL's collation does
	// it, and SQLite's unique index on them is NOCASE (migration 00008), which this
	// comparison names so that it uses that index.
	match := "username = ?"
	if s.db.Driver != "mysql" {
		match = "username = ? COLLATE NOCASE"
	}
	var m models.Member
	err := s.db.R.WithContext(ctx).Where(match, username).Take(&m).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return TokenPair{}, dbError("password login", err)
	}
	hash := s.dummyHash
	if err == nil && m.PasswordHash != nil {
		hash = []byte(*m.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || err != nil || m.PasswordHash == nil {
		return TokenPair{}, errBadPassword
	}
	if m.Status != models.StatusActive {
		return TokenPair{}, errBadPassword
	}
	return s.tokens.logIn(ctx, m, "password", clientIP)
}

// Staff passwords have 8 to 72 bytes: 72 is as many as bcrypt reads. (PATCH /members
// checks the same bounds in its validate tag.)
const (
	minPasswordBytes = 8
	maxPasswordBytes = 72
)

// HashPassword returns the bcrypt hash of a staff password. Returns EInvalid for a
// password shorter than 8 or longer than 72 bytes.
func HashPassword(password string) (string, error) {
	if len(password) < minPasswordBytes || len(password) > maxPasswordBytes {
		return "", models.InvalidField("password", "must have 8 to 72 bytes")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}
