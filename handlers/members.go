package handlers

import (
	"mime"
	"strings"

	"github.com/gofiber/fiber/v2"

	"partyledger/app"
	"partyledger/models"
)

func (s *Server) listMembers(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	org, err := queryID(c, "org_id")
	if err != nil {
		return err
	}
	f := app.MemberFilter{OrgID: org, Status: models.MemberStatus(c.Query("status")), Query: c.Query("q")}
	list, err := s.Members.List(c.UserContext(), actor(c), f, p)
	if err != nil {
		return err
	}
	return c.JSON(list)
}

type memberPatchReq struct {
	Name     *string          `json:"name"`
	BranchID *int64           `json:"branch_id"`
	GroupID  optional[int64]  `json:"group_id"`
	Status   *string          `json:"status"`
	Username optional[string] `json:"username"`
	Password *string          `json:"password"`
}

func (s *Server) updateMember(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var req memberPatchReq
	if err := decode(c, &req); err != nil {
		return err
	}
	p := app.MemberPatch{Name: req.Name, BranchID: req.BranchID, Password: req.Password, ClearGroup: req.GroupID.Null}
	if req.GroupID.Set && !req.GroupID.Null {
		p.GroupID = &req.GroupID.Value
	}
	if req.Status != nil {
		st := models.MemberStatus(*req.Status)
		p.Status = &st
	}
	if req.Username.Set {
		u := req.Username.Value // null clears staff log-in, like ""
		p.Username = &u
	}
	m, err := s.Members.Update(c.UserContext(), actor(c), id, p)
	if err != nil {
		return err
	}
	return c.JSON(m)
}

type rolesResp struct {
	Items []app.Grant `json:"items"`
}

func (s *Server) getRoles(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	roles, err := s.Members.ListRoles(c.UserContext(), actor(c), id)
	if err != nil {
		return err
	}
	return c.JSON(rolesResp{Items: roles})
}

func (s *Server) setRoles(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var req []app.RoleInput
	if err := decode(c, &req); err != nil {
		return err
	}
	roles, err := s.Members.SetRoles(c.UserContext(), actor(c), id, req)
	if err != nil {
		return err
	}
	return c.JSON(rolesResp{Items: roles})
}

// importMembers takes a roster as the "file" field of a multipart form (CSV or XLSX).
func (s *Server) importMembers(c *fiber.Ctx) error {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != fiber.MIMEMultipartForm {
		return models.Errorf(models.EMediaType, "send the roster as multipart/form-data with a field named file")
	}
	fh, err := c.FormFile("file")
	if err != nil {
		if strings.Contains(err.Error(), "no such file") || strings.Contains(err.Error(), "there is no uploaded file") {
			return models.InvalidField("file", "is required: a CSV or XLSX roster")
		}
		return models.Errorf(models.EMalformed, "the multipart body could not be read")
	}
	f, err := fh.Open()
	if err != nil {
		return models.Errorf(models.EMalformed, "the uploaded file could not be read")
	}
	defer f.Close()
	rows, err := app.ParseRoster(f)
	if err != nil {
		return err
	}
	res, err := s.Members.Import(c.UserContext(), actor(c), rows, nil)
	if err != nil {
		return err
	}
	return c.JSON(res)
}
