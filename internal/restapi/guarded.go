package restapi

import (
	"log/slog"
	"net/http"

	"github.com/strait-dev/strait/internal/auth"
)

// Guarded serves h behind the API's own authentication, rate limits and
// authorization: the caller needs action (auth.ActionRead, ...) on the
// link linkOf names in the request. Refusals are the API's: 401 with the
// challenge, 403, 429. It is for Strait's endpoints outside Confluent's
// namespace (the console's lag history), so that they admit exactly whom
// the API admits. A nil log discards.
func Guarded(guard *auth.Holder, log *slog.Logger, action string, linkOf func(*http.Request) string, h http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, opt: Options{Guard: guard}}
	a := access{action: action, link: func(_ *Server, r *http.Request) string { return linkOf(r) }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, ok := s.admit(w, r, a)
		if !ok {
			return
		}
		h.ServeHTTP(w, r)
	})
}
