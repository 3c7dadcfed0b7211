package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// readBody reads a request's whole body, at most limit bytes, within
// ReadBodyTimeout (a client that trickles its body is cut off).
func readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, error) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(ReadBodyTimeout))
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	return io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
}

// writeBodyError answers a body that could not be read: 413 over the
// limit, 408 too slow, 400 otherwise.
func writeBodyError(w http.ResponseWriter, r *http.Request, err error, limit int) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, r, http.StatusRequestEntityTooLarge, status.New(codes.ResourceExhausted,
			fmt.Sprintf("the request body is over the limit of %d bytes", limit)))
	case errors.Is(err, os.ErrDeadlineExceeded):
		writeError(w, r, http.StatusRequestTimeout, status.New(codes.DeadlineExceeded,
			fmt.Sprintf("the request body was not sent within %s", ReadBodyTimeout)))
	default:
		writeError(w, r, http.StatusBadRequest, status.New(codes.InvalidArgument, "reading the request body: "+err.Error()))
	}
}
