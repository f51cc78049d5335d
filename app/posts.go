package app

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"partyledger/models"
)

// Posts keeps the pioneer posts (党员先锋岗) of branches and who holds them.
type Posts struct{ db *DB }

// NewPosts returns the pioneer-post use cases.
func NewPosts(db *DB) *Posts { return &Posts{db: db} }

// PostInput is what POST /posts takes.
type PostInput struct {
	BranchID int64  `json:"branch_id" validate:"required,gt=0"`
	Name     string `json:"name" validate:"notblank,max=100"`
	Duties   string `json:"duties" validate:"max=1000"`
}

// Create adds a post to a branch the actor is secretary of. Returns EInvalid, ENotFound or EConflict.
func (s *Posts) Create(ctx context.Context, a *Actor, in PostInput) (models.Post, error) {
	if err := Validate(in); err != nil {
		return models.Post{}, err
	}
	var p models.Post
	err := s.db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		b, err := getOrg(ctx, tx, in.BranchID)
		if err := hidden(err, err == nil && a.Can(models.RoleSecretary, b.Path), errOrgNotFound); err != nil {
			return err
		}
		if b.Kind != models.KindBranch {
			return models.InvalidField("branch_id", "must be a branch")
		}
		p = models.Post{BranchID: b.ID, Name: strings.TrimSpace(in.Name), Duties: strings.TrimSpace(in.Duties), CreatedBy: &a.ID, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
		if err := tx.Create(&p).Error; err != nil {
			if isDuplicate(err) {
				return models.Errorf(models.EConflict, "the branch has a post named %s", p.Name)
			}
			return dbError("create post", err)
		}
		return writeAudit(tx, &a.ID, &b.ID, "post.created", "post", p.ID, nil, p)
	})
	return p, err
}

// PostWithAssignments is a post and who holds it.
type PostWithAssignments struct {
	models.Post
	Assignments []models.PostAssignment `json:"assignments"`
}

// List returns the posts of the actor's own branch and of the branches they are
// secretary or leader over, with their assignments.
func (s *Posts) List(ctx context.Context, a *Actor, p Page) (List[PostWithAssignments], error) {
	scopes := append(a.Scopes(models.RoleSecretary, models.RoleLeader), a.BranchPath)
	var posts []models.Post
	err := s.db.R.WithContext(ctx).Table("posts").Select("posts.*").Joins("JOIN orgs ON orgs.id = posts.branch_id").
		Where(scopeClause("orgs.path", scopes)).Where("posts.id > ?", p.After).Order("posts.id").Limit(p.Limit + 1).Find(&posts).Error
	if err != nil {
		return List[PostWithAssignments]{}, dbError("list posts", err)
	}
	ids := make([]int64, len(posts))
	for i, p := range posts {
		ids[i] = p.ID
	}
	byPost := map[int64][]models.PostAssignment{}
	if len(ids) > 0 {
		var as []models.PostAssignment
		if err := s.db.R.WithContext(ctx).Where("post_id IN ?", ids).Order("id").Find(&as).Error; err != nil {
			return List[PostWithAssignments]{}, dbError("list posts", err)
		}
		for _, x := range as {
			byPost[x.PostID] = append(byPost[x.PostID], x)
		}
	}
	rows := make([]PostWithAssignments, len(posts))
	for i, p := range posts {
		rows[i] = PostWithAssignments{Post: p, Assignments: byPost[p.ID]}
		if rows[i].Assignments == nil {
			rows[i].Assignments = []models.PostAssignment{}
		}
	}
	return pageOf(rows, p.Limit, func(x PostWithAssignments) int64 { return x.ID }), nil
}

// AssignmentInput is what POST /posts/{id}/assignments takes.
type AssignmentInput struct {
	MemberID   int64  `json:"member_id" validate:"required,gt=0"`
	StartsOn   string `json:"starts_on" validate:"required"`
	EndsOn     string `json:"ends_on" validate:"required"`
	Commitment string `json:"commitment" validate:"notblank,max=1000"`
}

// Assign puts a member of the post's branch on the post for a term. Returns EInvalid or ENotFound.
func (s *Posts) Assign(ctx context.Context, a *Actor, postID int64, in AssignmentInput) (models.PostAssignment, error) {
	if err := Validate(in); err != nil {
		return models.PostAssignment{}, err
	}
	fields := map[string]string{}
	start, err := models.ParseDate(in.StartsOn)
	if err != nil {
		fields["starts_on"] = err.Error()
	}
	end, err := models.ParseDate(in.EndsOn)
	if err != nil {
		fields["ends_on"] = err.Error()
	} else if start != "" && end < start {
		fields["ends_on"] = "is before starts_on"
	}
	if utf8.RuneCountInString(in.Commitment) > 1000 {
		fields["commitment"] = "must have at most 1000 characters"
	}
	if len(fields) > 0 {
		return models.PostAssignment{}, models.Invalid(fields)
	}
	var as models.PostAssignment
	err = s.db.writeTx(ctx, func(tx *gorm.DB) error {
		var p models.Post
		if err := tx.Take(&p, postID).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return models.Errorf(models.ENotFound, "no such post")
			}
			return dbError("assign", err)
		}
		b, err := getOrg(ctx, tx, p.BranchID)
		if err := hidden(err, err == nil && a.Can(models.RoleSecretary, b.Path), models.Errorf(models.ENotFound, "no such post")); err != nil {
			return err
		}
		// The member's row for update: a member moved to another branch or disabled at
		// this moment is not assigned a post of the branch they have left.
		if err := lockMemberRow(tx, in.MemberID); err != nil {
			return err
		}
		var m models.Member
		err = tx.Take(&m, in.MemberID).Error
		if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return dbError("assign", err) // a database that stopped answering is 503, not "no such member"
		}
		if err != nil || m.BranchID != p.BranchID || m.Status != models.StatusActive {
			return models.InvalidField("member_id", "must be an active member of the post's branch")
		}
		as = models.PostAssignment{PostID: p.ID, MemberID: m.ID, StartsOn: start, EndsOn: end, Commitment: strings.TrimSpace(in.Commitment),
			CreatedBy: &a.ID, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
		if err := tx.Create(&as).Error; err != nil {
			return dbError("assign", err)
		}
		return writeAudit(tx, &a.ID, &b.ID, "post.assigned", "post_assignment", as.ID, nil, as)
	})
	return as, err
}
