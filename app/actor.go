package app

import (
	"context"
	"database/sql"
	"sync"

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
const actorQuery = `SELECT m.id, m.member_no, m.name, m.branch_id, m.group_id, m.status,
 b.name, b.kind, b.path, r.role, r.org_id, o.name, o.kind, o.path
FROM members m
JOIN orgs b ON b.id = m.branch_id
LEFT JOIN member_roles r ON r.member_id = m.id
LEFT JOIN orgs o ON o.id = r.org_id
WHERE m.id = ?`

// actorLoader keeps one prepared statement for actorQuery: it runs on every request.
type actorLoader struct {
	db   *sql.DB
	once sync.Once
	stmt *sql.Stmt
	err  error
}

// LoadActor reads the actor for memberID. Returns EUnauthorized when the member is
// unknown or inactive, EUnavailable when the database cannot be reached.
func (l *actorLoader) LoadActor(ctx context.Context, memberID int64) (*Actor, error) {
	l.once.Do(func() { l.stmt, l.err = l.db.PrepareContext(context.Background(), actorQuery) })
	if l.err != nil {
		return nil, dbError("load actor: prepare", l.err)
	}
	rows, err := l.stmt.QueryContext(ctx, memberID)
	if err != nil {
		return nil, dbError("load actor", err)
	}
	defer rows.Close()
	var a *Actor
	for rows.Next() {
		var cur Actor
		var role, orgName, orgKind, orgPath sql.NullString
		var orgID, groupID sql.NullInt64
		if err := rows.Scan(&cur.ID, &cur.MemberNo, &cur.Name, &cur.BranchID, &groupID, &cur.Status,
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
		return nil, models.Errorf(models.EUnauthorized, "this account does not exist or is disabled")
	}
	if a.BranchKind == models.KindBranch && !a.holds(models.RoleMember, a.BranchID) {
		a.Grants = append(a.Grants, Grant{Role: models.RoleMember, OrgID: a.BranchID, OrgName: a.BranchName, OrgKind: a.BranchKind, orgPath: a.BranchPath})
	}
	return a, nil
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
