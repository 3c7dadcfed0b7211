package httpapi

import (
	"net/http"
	"time"
)

// recorder remembers a response's status and the route that served it,
// for the metrics; it passes flushes through (streams) and unwraps for
// http.ResponseController.
type recorder struct {
	http.ResponseWriter
	code  int
	route string
}

func (w *recorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts every request by route and code and times it
// (leadrouter_http_requests_total, leadrouter_http_request_duration_seconds).
// The route is the gateway's path template, or the mux pattern; a request
// no route matched counts as "unmatched", so paths never become labels.
func (e *edge) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &recorder{ResponseWriter: w}
		next.ServeHTTP(rw, r)
		route := rw.route
		if route == "" {
			route = r.Pattern
		}
		if route == "" || route == "/" {
			route = "unmatched"
		}
		if rw.code == 0 {
			rw.code = http.StatusOK
		}
		e.o.Metrics.HTTPServed(route, rw.code, time.Since(start))
	})
}
