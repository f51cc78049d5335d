package app

import (
	"context"
	"database/sql"
	"strings"
	"sync"

	"gorm.io/gorm"

	"partyledger/models"
)

// Grant is one role of a member over an org subtree.
type Grant struct {
	Role    models.Role    `json:"role"`
	OrgID   int64          `json:"org_id"`
	OrgName string         `json:"org_name"`
	OrgKind models.OrgKind `json:"org_kind"`
	orgPath string
}

// Actor is the caller of a request: the member, their branch and their roles, read from
// the database on every request so that a removed role or a disabled member stops at once.
type Actor struct {
	ID         int64
	MemberNo   string
	Name       string
	BranchID   int64
	GroupID    *int64
	Status     models.MemberStatus
	BranchName string
	BranchKind models.OrgKind
	BranchPath string
	Grants     []Grant
	rev        int64
	// orgs are the orgs the actor's reads start from: the line above their branch and the
	// orgs of their roles. A move of any of them bumps the actor's auth_rev (see
	// bumpAuthRevUnder), so they are as fresh as the roles.
	orgs map[int64]models.Org
}

// knownOrg is an org from the actor's line or roles, without a round trip.
func (a *Actor) knownOrg(id int64) (models.Org, bool) {
	o, ok := a.orgs[id]
	return o, ok
}

// orgOf rebuilds an org from what a path tells: its parent and depth.
func orgOf(id int64, kind models.OrgKind, name, path string) models.Org {
	o := models.Org{ID: id, Kind: kind, Name: name, Path: path}
	ids := ancestorIDs(path)
	o.Depth = len(ids) - 1
	if len(ids) > 1 {
		o.ParentID = &ids[len(ids)-2]
	}
	return o
}

// Can reports whether the actor holds role over the org at path (a role over an org
// covers its whole subtree). Admins hold every power of the roles below them in scope.
func (a *Actor) Can(role models.Role, path string) bool {
	for _, g := range a.Grants {
		if (g.Role == role || g.Role == models.RoleAdmin) && models.PathContains(g.orgPath, path) {
			return true
		}
	}
	return false
}

// CanAny reports whether the actor holds any of roles over path.
func (a *Actor) CanAny(path string, roles ...models.Role) bool {
	for _, r := range roles {
		if a.Can(r, path) {
			return true
		}
	}
	return false
}

// Scopes returns the paths of the subtrees over which the actor holds any of roles.
func (a *Actor) Scopes(roles ...models.Role) []string {
	var out []string
	for _, g := range a.Grants {
		for _, r := range roles {
			if g.Role == r || g.Role == models.RoleAdmin {
				out = append(out, g.orgPath)
				break
			}
		}
	}
	return out
}

// actorQuery reads a member, their branch and all their roles in one round trip.
const actorQuery = `SELECT m.id, m.member_no, m.name, m.branch_id, m.group_id, m.status, m.auth_rev,
 b.name, b.kind, b.path, r.role, r.org_id, o.name, o.kind, o.path
FROM members m
JOIN orgs b ON b.id = m.branch_id
LEFT JOIN member_roles r ON r.member_id = m.id
LEFT JOIN orgs o ON o.id = r.org_id
WHERE m.id = ?`

// maxCachedActors bounds the cache; past it the cache starts over.
const maxCachedActors = 50_000

type cachedActor struct {
	rev   int64
	actor *Actor
}

// actorLoader reads the caller of each request. Every call asks the database for the
// member's status and auth_rev (one primary-key row, on MySQL read together with those of
// concurrent requests: see revReader); only when auth_rev has moved since the cached copy
// does it read the roles again. Every change to what a member may do bumps auth_rev in its
// own transaction, so changes take effect at the next request, on every replica.
type actorLoader struct {
	db    *sql.DB
	revs  *revReader
	stmt  *lazyStmt // actorQuery
	mu    sync.RWMutex
	cache map[int64]cachedActor
}

func newActorLoader(db *sql.DB, batch bool) *actorLoader {
	return &actorLoader{db: db, revs: newRevReader(db, batch), stmt: &lazyStmt{db: db, query: actorQuery}, cache: map[int64]cachedActor{}}
}

var errNoAccount = &models.Error{Code: models.EUnauthorized, Message: "this account does not exist or is disabled"}

// LoadActor reads the actor for memberID. The returned Actor is shared: read it, never
// change it. Returns EUnauthorized when the member is unknown or inactive, EUnavailable
// when the database cannot be reached.
func (l *actorLoader) LoadActor(ctx context.Context, memberID int64) (*Actor, error) {
	rev, err := l.check(ctx, memberID)
	if err != nil {
		return nil, err
	}
	return l.at(ctx, memberID, rev)
}

// check is the question every request asks: memberID's auth_rev, or EUnauthorized when
// the member is unknown or inactive, EUnavailable when the database cannot be reached.
func (l *actorLoader) check(ctx context.Context, memberID int64) (int64, error) {
	found, status, rev, err := l.revs.get(ctx, memberID)
	if err != nil {
		return 0, dbError("load actor", err)
	}
	if !found || status != models.StatusActive {
		return 0, errNoAccount
	}
	return rev, nil
}

// Cached returns the cached copy of memberID's actor without asking the database, for a
// write whose own transaction checks it (ErrActorChanged); ok is false when there is none.
func (l *actorLoader) Cached(memberID int64) (a *Actor, ok bool) {
	l.mu.RLock()
	c, ok := l.cache[memberID]
	l.mu.RUnlock()
	return c.actor, ok
}

// Speculate is LoadActor in two halves, for reads with no side effects. It returns the
// cached copy of memberID's actor at once, and starts the check LoadActor makes (status
// and auth_rev) beside the caller's own work. confirm waits for that check and returns
// the actor as it is now: the very same pointer when the copy is current, so the work
// done with it stands; any other actor means it must be done again, and an error means
// the request fails as LoadActor would have failed it. ok is false when no copy is
// cached; call LoadActor then. confirm must be called exactly once.
func (l *actorLoader) Speculate(ctx context.Context, memberID int64) (a *Actor, confirm func() (*Actor, error), ok bool) {
	cached, ok := l.Cached(memberID)
	if !ok {
		return nil, nil, false
	}
	type checked struct {
		rev int64
		err error
	}
	done := make(chan checked, 1)
	go func() {
		rev, err := l.check(ctx, memberID)
		done <- checked{rev, err}
	}()
	return cached, func() (*Actor, error) {
		x := <-done
		if x.err != nil {
			return nil, x.err
		}
		if x.rev == cached.rev {
			return cached, nil
		}
		return l.at(ctx, memberID, x.rev)
	}, true
}

// at returns memberID's actor at auth_rev rev: the cached copy when it is that one, else
// read now (and cached).
func (l *actorLoader) at(ctx context.Context, memberID, rev int64) (*Actor, error) {
	l.mu.RLock()
	c, ok := l.cache[memberID]
	l.mu.RUnlock()
	if ok && c.rev == rev {
		return c.actor, nil
	}
	a, err := l.read(ctx, memberID)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if len(l.cache) >= maxCachedActors {
		clear(l.cache)
	}
	if cur, ok := l.cache[memberID]; !ok || cur.rev < a.rev {
		l.cache[memberID] = cachedActor{rev: a.rev, actor: a}
	}
	l.mu.Unlock()
	return a, nil
}

// read runs actorQuery: the member, branch and roles as of one snapshot, with its auth_rev.
func (l *actorLoader) read(ctx context.Context, memberID int64) (*Actor, error) {
	stmt, err := l.stmt.get(ctx)
	if err != nil {
		return nil, dbError("load actor: prepare", err)
	}
	rows, err := stmt.QueryContext(ctx, memberID)
	if err != nil {
		return nil, dbError("load actor", err)
	}
	defer rows.Close()
	var a *Actor
	for rows.Next() {
		var cur Actor
		var role, orgName, orgKind, orgPath sql.NullString
		var orgID, groupID sql.NullInt64
		if err := rows.Scan(&cur.ID, &cur.MemberNo, &cur.Name, &cur.BranchID, &groupID, &cur.Status, &cur.rev,
			&cur.BranchName, &cur.BranchKind, &cur.BranchPath, &role, &orgID, &orgName, &orgKind, &orgPath); err != nil {
			return nil, dbError("load actor", err)
		}
		if a == nil {
			a = &cur
			if groupID.Valid {
				a.GroupID = &groupID.Int64
			}
		}
		if role.Valid {
			a.Grants = append(a.Grants, Grant{Role: models.Role(role.String), OrgID: orgID.Int64, OrgName: orgName.String, OrgKind: models.OrgKind(orgKind.String), orgPath: orgPath.String})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("load actor", err)
	}
	if a == nil || a.Status != models.StatusActive {
		return nil, errNoAccount
	}
	if a.BranchKind == models.KindBranch && !a.holds(models.RoleMember, a.BranchID) {
		a.Grants = append(a.Grants, Grant{Role: models.RoleMember, OrgID: a.BranchID, OrgName: a.BranchName, OrgKind: a.BranchKind, orgPath: a.BranchPath})
	}
	a.orgs = map[int64]models.Org{}
	for _, g := range a.Grants {
		a.orgs[g.OrgID] = orgOf(g.OrgID, g.OrgKind, g.OrgName, g.orgPath)
	}
	ids := ancestorIDs(a.BranchPath)
	if len(ids) == 0 {
		return a, nil
	}
	rows.Close()
	line, err := l.db.QueryContext(ctx, "SELECT id, kind, name, path FROM orgs WHERE id IN ("+strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+")", anySlice(ids)...)
	if err != nil {
		return nil, dbError("load actor", err)
	}
	defer line.Close()
	for line.Next() {
		var o models.Org
		if err := line.Scan(&o.ID, &o.Kind, &o.Name, &o.Path); err != nil {
			return nil, dbError("load actor", err)
		}
		a.orgs[o.ID] = orgOf(o.ID, o.Kind, o.Name, o.Path)
	}
	if err := line.Err(); err != nil {
		return nil, dbError("load actor", err)
	}
	return a, nil
}

// bumpAuthRev marks that what member id may do has changed, inside the transaction that
// changes it.
func bumpAuthRev(tx *gorm.DB, id int64) error {
	return dbError("bump auth_rev", tx.Model(&models.Member{}).Where("id = ?", id).UpdateColumn("auth_rev", gorm.Expr("auth_rev + 1")).Error)
}

// bumpAuthRevUnder marks every member whose branch lies in the subtree at path, or who
// holds a role over an org in it: an org there was renamed or moved.
func bumpAuthRevUnder(tx *gorm.DB, path string) error {
	cond, args := subtree("path", path)
	err := tx.Exec(`UPDATE members SET auth_rev = auth_rev + 1
WHERE branch_id IN (SELECT id FROM orgs WHERE `+cond+`)
   OR id IN (SELECT member_id FROM member_roles WHERE org_id IN (SELECT id FROM orgs WHERE `+cond+`))`, append(args, args...)...).Error
	return dbError("bump auth_rev", err)
}

func (a *Actor) holds(role models.Role, orgID int64) bool {
	for _, g := range a.Grants {
		if g.Role == role && g.OrgID == orgID {
			return true
		}
	}
	return false
}

// SystemActor is the command line acting as an admin over every root of the org tree.
// Its ID is 0, recorded in the audit log as no member.
func SystemActor(ctx context.Context, db *DB) (*Actor, error) {
	var roots []models.Org
	if err := db.R.WithContext(ctx).Where("parent_id IS NULL").Find(&roots).Error; err != nil {
		return nil, dbError("system actor", err)
	}
	a := &Actor{Name: "ledgerctl", Status: models.StatusActive}
	for _, r := range roots {
		a.Grants = append(a.Grants, Grant{Role: models.RoleAdmin, OrgID: r.ID, OrgName: r.Name, OrgKind: r.Kind, orgPath: r.Path})
	}
	return a, nil
}

func anySlice[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}
