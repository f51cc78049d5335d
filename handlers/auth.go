package handlers

import (
	"github.com/gofiber/fiber/v2"

	"partyledger/app"
	"partyledger/models"
)

type wechatLoginReq struct {
	Code string `json:"code" validate:"required"`
}

func (s *Server) wechatLogin(c *fiber.Ctx) error {
	var req wechatLoginReq
	if err := decode(c, &req); err != nil {
		return err
	}
	res, err := s.Identity.WechatLogin(c.UserContext(), clientIP(c), req.Code)
	if err != nil {
		return err
	}
	if res.Tokens != nil {
		return c.JSON(res.Tokens)
	}
	return c.JSON(fiber.Map{"status": "unbound", "bind_token": res.BindToken})
}

type bindReq struct {
	BindToken  string `json:"bind_token" validate:"required"`
	InviteCode string `json:"invite_code" validate:"required,max=32"`
}

func (s *Server) wechatBind(c *fiber.Ctx) error {
	var req bindReq
	if err := decode(c, &req); err != nil {
		return err
	}
	pair, err := s.Identity.Bind(c.UserContext(), clientIP(c), req.BindToken, req.InviteCode)
	if err != nil {
		return err
	}
	return c.JSON(pair)
}

type passwordLoginReq struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (s *Server) passwordLogin(c *fiber.Ctx) error {
	var req passwordLoginReq
	if err := decode(c, &req); err != nil {
		return err
	}
	pair, err := s.Identity.PasswordLogin(c.UserContext(), clientIP(c), req.Username, req.Password)
	if err != nil {
		return err
	}
	return c.JSON(pair)
}

type refreshReq struct {
	RefreshToken string `json:"refresh_token" validate:"required"`
}

func (s *Server) refresh(c *fiber.Ctx) error {
	var req refreshReq
	if err := decode(c, &req); err != nil {
		return err
	}
	pair, err := s.Identity.Tokens().Refresh(c.UserContext(), clientIP(c), req.RefreshToken)
	if err != nil {
		return err
	}
	return c.JSON(pair)
}

func (s *Server) logout(c *fiber.Ctx) error {
	var req refreshReq
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := s.Identity.Tokens().Logout(c.UserContext(), clientIP(c), actor(c).ID, req.RefreshToken); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

type meBranch struct {
	ID   int64          `json:"id"`
	Kind models.OrgKind `json:"kind"`
	Name string         `json:"name"`
}

type meResp struct {
	ID       int64               `json:"id"`
	MemberNo string              `json:"member_no"`
	Name     string              `json:"name"`
	BranchID int64               `json:"branch_id"`
	GroupID  *int64              `json:"group_id"`
	Status   models.MemberStatus `json:"status"`
	Branch   meBranch            `json:"branch"`
	Roles    []app.Grant         `json:"roles"`
}

func (s *Server) me(c *fiber.Ctx) error {
	a := actor(c)
	roles := a.Grants
	if roles == nil {
		roles = []app.Grant{}
	}
	return c.JSON(meResp{ID: a.ID, MemberNo: a.MemberNo, Name: a.Name, BranchID: a.BranchID, GroupID: a.GroupID, Status: a.Status,
		Branch: meBranch{ID: a.BranchID, Kind: a.BranchKind, Name: a.BranchName}, Roles: roles})
}
