package nodeapi

import (
	"context"
	"fmt"
	"net/http"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

type userKey struct{}

// userOf returns the user authenticate put in the context.
func userOf(ctx context.Context) (user.Info, bool) {
	u, ok := ctx.Value(userKey{}).(user.Info)
	return u, ok
}

// authenticate lets only authenticated requests through; anonymous ones get 401, as from a
// kubelet with anonymous auth off.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rl := requestLogOf(r)
		resp, ok, err := s.authn.AuthenticateRequest(r)
		if err != nil {
			rl.error = "authentication: " + err.Error()
		}
		if err != nil || !ok || resp == nil || resp.User == nil {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		// Nothing past this point needs the credential.
		r.Header.Del("Authorization")
		rl.user = resp.User.GetName()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, resp.User)))
	})
}

// nodeProxyAttributes are the authorization attributes the kubelet uses for the paths it has no
// finer subresource for, /containerLogs among them: the HTTP method's verb on nodes/proxy of the
// node. An empty node asks about every node.
func nodeProxyAttributes(u user.Info, r *http.Request, node string) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{
		User:            u,
		Verb:            verbOf(r.Method),
		APIVersion:      "v1",
		Resource:        "nodes",
		Subresource:     "proxy",
		Name:            node,
		ResourceRequest: true,
		Path:            r.URL.Path,
	}
}

// verbOf maps an HTTP method to the API verb, as the kubelet does. HEAD reads like GET.
func verbOf(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		return "get"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return ""
}

// authorize answers 403 (or 500 when the authorizer fails) and returns false unless attrs are
// allowed.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, attrs authorizer.AttributesRecord) bool {
	decision, reason, err := s.authz.Authorize(r.Context(), attrs)
	if err != nil {
		requestLogOf(r).error = "authorization: " + err.Error()
		http.Error(w, fmt.Sprintf("Authorization error (user=%s, verb=%s, resource=%s, subresource=%s)",
			attrs.User.GetName(), attrs.Verb, attrs.Resource, attrs.Subresource), http.StatusInternalServerError)
		return false
	}
	if decision == authorizer.DecisionAllow {
		return true
	}
	name := attrs.Name
	if name == "" {
		name = "*" // asked about every node
	}
	msg := fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource=%s, name=%s)",
		attrs.User.GetName(), attrs.Verb, attrs.Resource, attrs.Subresource, name)
	if reason != "" {
		msg += ": " + reason
	}
	requestLogOf(r).error = msg
	http.Error(w, msg, http.StatusForbidden)
	return false
}
