package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// app is the host application's web front: its handlers over its tables and walhook.
type app struct {
	db      *db
	walhook *platform
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("POST /companies", a.createCompany)
	mux.HandleFunc("GET /companies/{id}", a.showCompany)
	mux.HandleFunc("POST /companies/{id}/users", a.addUser)
	mux.HandleFunc("POST /companies/{id}/contacts", a.addContact)
	mux.HandleFunc("POST /companies/{id}/contacts/{contact}/delete", a.deleteContact)
	mux.HandleFunc("GET /companies/{id}/settings", a.settings)
	return mux
}

// render writes a page; status is the HTTP status (a form with errors answers 422).
func render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		log.Printf("render %s: %v", name, err)
	}
}

// fail answers an error page: 404 for a company or contact that does not exist, 502 when walhook
// refused or could not be reached, 500 otherwise.
func fail(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var werr *walhookError
	switch {
	case errors.Is(err, errNotFound):
		status = http.StatusNotFound
	case errors.As(err, &werr):
		status = http.StatusBadGateway
	}
	log.Printf("hostapp: %v", err)
	render(w, status, "error.html", map[string]any{"Status": status, "Error": err.Error()})
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	a.renderHome(w, r, http.StatusOK, nil, companyForm{})
}

type companyForm struct{ Name, Email string }

func (a *app) renderHome(w http.ResponseWriter, r *http.Request, status int, errs map[string]string, form companyForm) {
	cs, err := a.db.companies(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	render(w, status, "home.html", map[string]any{"Companies": cs, "Errors": errs, "Form": form})
}

// checkEmail accepts one plain address.
func checkEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s
}

// createCompany is the sign-up: a company and its first user in the application's tables, then
// the same in walhook (provision). A company walhook could not take yet is provisioned again at
// the next visit of its pages or the next start.
func (a *app) createCompany(w http.ResponseWriter, r *http.Request) {
	form := companyForm{Name: strings.TrimSpace(r.PostFormValue("name")), Email: strings.TrimSpace(r.PostFormValue("email"))}
	errs := map[string]string{}
	if form.Name == "" || len(form.Name) > 200 {
		errs["name"] = "Enter the company's name (up to 200 characters)."
	}
	if !checkEmail(form.Email) {
		errs["email"] = "Enter one email address, such as owner@example.com."
	}
	if len(errs) > 0 {
		a.renderHome(w, r, http.StatusUnprocessableEntity, errs, form)
		return
	}
	id, err := a.db.createCompany(r.Context(), form.Name, form.Email)
	if err != nil {
		fail(w, err)
		return
	}
	if err := a.provision(r.Context(), id); err != nil {
		fail(w, err)
		return
	}
	toCompany(w, r, id)
}

// walhookRole is the walhook role of one of the application's roles: its owners are walhook
// owners (every permission: they manage webhooks), its readers members without a role, who see
// the page but change nothing. ok is false for a role the application does not have.
func walhookRole(role string) (walhook string, ok bool) {
	switch role {
	case "owner":
		return "owner", true
	case "reader":
		return "", true
	}
	return "", false
}

// provision puts a company and its users into walhook, those not there yet: the company with the
// application's own id as external_id (the value in hostapp.contacts.company_id, the tenant
// column), each user as a member with their role. It is idempotent: what is recorded as
// provisioned is skipped.
func (a *app) provision(ctx context.Context, companyID string) error {
	c, err := a.db.company(ctx, companyID)
	if err != nil {
		return err
	}
	if c.WalhookID == "" {
		if c.WalhookID, err = a.walhook.createCompany(ctx, c.ID, c.Name); err != nil {
			return err
		}
		if err := a.db.setCompanyWalhookID(ctx, c.ID, c.WalhookID); err != nil {
			return err
		}
	}
	users, err := a.db.users(ctx, c.ID)
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.WalhookMemberID != 0 {
			continue
		}
		role, _ := walhookRole(u.Role) // the table's CHECK allows only the application's roles
		memberID, err := a.walhook.addMember(ctx, c.WalhookID, u.Email, role)
		if err != nil {
			return err
		}
		if err := a.db.setUserWalhookID(ctx, u.ID, memberID); err != nil {
			return err
		}
	}
	return nil
}

// provisionAll provisions every company not yet (fully) in walhook; run at start.
func (a *app) provisionAll(ctx context.Context) error {
	cs, err := a.db.companies(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := a.provision(ctx, c.ID); err != nil {
			return fmt.Errorf("provision company %s: %w", c.ID, err)
		}
	}
	return nil
}

// companyPage is what the company's page shows.
type companyPage struct {
	Company  company
	Users    []user
	Contacts []contact
	Errors   map[string]string
	Contact  struct{ Name, Email string }
	User     struct{ Email, Role string }
}

// toCompany answers a form post with a redirect to the company's page (post, redirect, get).
func toCompany(w http.ResponseWriter, r *http.Request, id string) {
	http.Redirect(w, r, "/companies/"+id, http.StatusSeeOther) //nolint:gosec // G710: id is a UUID (from the database, or checked by pathCompany), so this stays a local path
}

// uuidPattern is a company id as PostgreSQL writes a uuid.
var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// pathCompany is the company id in the path; one that is not a UUID is a company that does not exist.
func pathCompany(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !uuidPattern.MatchString(id) {
		return "", errNotFound
	}
	return id, nil
}

func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, errNotFound
	}
	return id, nil
}

func (a *app) loadCompany(r *http.Request) (*companyPage, error) {
	id, err := pathCompany(r)
	if err != nil {
		return nil, err
	}
	p := &companyPage{}
	if p.Company, err = a.db.company(r.Context(), id); err != nil {
		return nil, err
	}
	if p.Users, err = a.db.users(r.Context(), id); err != nil {
		return nil, err
	}
	if p.Contacts, err = a.db.contacts(r.Context(), id); err != nil {
		return nil, err
	}
	return p, nil
}

func (a *app) showCompany(w http.ResponseWriter, r *http.Request) {
	p, err := a.loadCompany(r)
	if err != nil {
		fail(w, err)
		return
	}
	render(w, http.StatusOK, "company.html", p)
}

// addContact inserts a contact: nothing more. walhook captures the INSERT and sends
// contact.created to the company's webhooks.
func (a *app) addContact(w http.ResponseWriter, r *http.Request) {
	p, err := a.loadCompany(r)
	if err != nil {
		fail(w, err)
		return
	}
	p.Contact.Name, p.Contact.Email = strings.TrimSpace(r.PostFormValue("name")), strings.TrimSpace(r.PostFormValue("email"))
	p.Errors = map[string]string{}
	if p.Contact.Name == "" || len(p.Contact.Name) > 200 {
		p.Errors["contact_name"] = "Enter the contact's name (up to 200 characters)."
	}
	if p.Contact.Email != "" && !checkEmail(p.Contact.Email) {
		p.Errors["contact_email"] = "Enter one email address, or leave it empty."
	}
	if len(p.Errors) > 0 {
		render(w, http.StatusUnprocessableEntity, "company.html", p)
		return
	}
	// walhook drops rows of a company it does not know, so the company is provisioned first.
	if err := a.provision(r.Context(), p.Company.ID); err != nil {
		fail(w, err)
		return
	}
	if err := a.db.addContact(r.Context(), p.Company.ID, p.Contact.Name, p.Contact.Email); err != nil {
		fail(w, err)
		return
	}
	toCompany(w, r, p.Company.ID)
}

func (a *app) deleteContact(w http.ResponseWriter, r *http.Request) {
	companyID, err := pathCompany(r)
	if err != nil {
		fail(w, err)
		return
	}
	contactID, err := pathID(r, "contact")
	if err != nil {
		fail(w, err)
		return
	}
	if err := a.db.deleteContact(r.Context(), companyID, contactID); err != nil {
		fail(w, err)
		return
	}
	toCompany(w, r, companyID)
}

// addUser adds a teammate and provisions them into walhook as a member with their role.
func (a *app) addUser(w http.ResponseWriter, r *http.Request) {
	p, err := a.loadCompany(r)
	if err != nil {
		fail(w, err)
		return
	}
	p.User.Email, p.User.Role = strings.TrimSpace(r.PostFormValue("email")), r.PostFormValue("role")
	p.Errors = map[string]string{}
	if !checkEmail(p.User.Email) {
		p.Errors["user_email"] = "Enter one email address, such as teammate@example.com."
	}
	if _, ok := walhookRole(p.User.Role); !ok {
		p.Errors["user_role"] = "Choose owner or reader."
	}
	if len(p.Errors) > 0 {
		render(w, http.StatusUnprocessableEntity, "company.html", p)
		return
	}
	if err := a.db.addUser(r.Context(), p.Company.ID, p.User.Email, p.User.Role); err != nil {
		fail(w, err)
		return
	}
	if err := a.provision(r.Context(), p.Company.ID); err != nil {
		fail(w, err)
		return
	}
	toCompany(w, r, p.Company.ID)
}

// settings is the application's settings screen: walhook's page in an iframe, opened on a
// one-time portal link minted for this visit. The link signs the frame in as the user's member
// and is spent by that sign-in, so the page must not be cached and a reload mints a new one.
func (a *app) settings(w http.ResponseWriter, r *http.Request) {
	p, err := a.loadCompany(r)
	if err != nil {
		fail(w, err)
		return
	}
	if err := a.provision(r.Context(), p.Company.ID); err != nil {
		fail(w, err)
		return
	}
	// Read again what provisioning recorded: walhook's ids of the company and its users.
	if p.Company, err = a.db.company(r.Context(), p.Company.ID); err != nil {
		fail(w, err)
		return
	}
	if p.Users, err = a.db.users(r.Context(), p.Company.ID); err != nil {
		fail(w, err)
		return
	}
	// The signed-in user; without sessions in this example, ?user= or the company's first user.
	u := p.Users[0]
	if want := r.URL.Query().Get("user"); want != "" {
		found := false
		for _, x := range p.Users {
			if strconv.FormatInt(x.ID, 10) == want {
				u, found = x, true
			}
		}
		if !found {
			fail(w, errNotFound)
			return
		}
	}
	link, err := a.walhook.portalLink(r.Context(), p.Company.WalhookID, u.WalhookMemberID)
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	render(w, http.StatusOK, "settings.html", map[string]any{"Company": p.Company, "Users": p.Users, "User": u, "Link": link})
}
