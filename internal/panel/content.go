package panel

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/darse/darse/internal/auth"
	"github.com/darse/darse/internal/content"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/site"
)

// limitBody bounds request bodies before anything reads them: uploads get
// UploadMax, every other form 1 MiB.
func (s *Server) limitBody(c *gin.Context) {
	if c.Request.Body != nil {
		max := int64(1 << 20)
		if strings.HasSuffix(c.Request.URL.Path, "/content") {
			max = s.cfg.UploadMax
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, max)
	}
	c.Next()
}

// upload checks the archive at once (an unsafe one is refused whole, next
// to the field, with nothing recorded), saves it, and records the
// operation that swaps it in.
func (s *Server) upload(c *gin.Context) error {
	ctx := c.Request.Context()
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	refuse := func(err error) error {
		return s.renderSite(c, st, status(err), fieldErrors(err))
	}
	fh, err := c.FormFile("archive")
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return refuse(&site.FieldError{Field: "archive", Value: "", Rule: fmt.Sprintf("is larger than %d MiB", s.cfg.UploadMax>>20)})
		}
		return refuse(&site.FieldError{Field: "archive", Value: "", Rule: "choose a .zip or .tar.gz file to upload"})
	}
	mode := c.PostForm("mode")
	if mode != content.Merge {
		mode = content.Replace
	}
	if err := os.MkdirAll(s.cfg.UploadsDir, 0o700); err != nil {
		return err
	}
	tok, err := auth.Token()
	if err != nil {
		return err
	}
	path := filepath.Join(s.cfg.UploadsDir, st.Name+"-"+tok[:16]+".upload")
	if err := saveUpload(fh.Open, path); err != nil {
		return err
	}
	name := filepath.Base(fh.Filename)
	if _, err := content.Check(path, name, s.cfg.ContentLimits); err != nil {
		os.Remove(path)
		return refuse(err)
	}
	if _, err := s.ops.Submit(ctx, ops.Request{Site: st.Name, User: currentUser(c).Name}, &ops.Content{Archive: path, Filename: name, Mode: mode}); err != nil {
		os.Remove(path)
		return err
	}
	c.Redirect(http.StatusSeeOther, "/sites/"+st.Name)
	return nil
}

func saveUpload(open func() (multipart.File, error), path string) error {
	src, err := open()
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		os.Remove(path)
		return err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		os.Remove(path)
		return err
	}
	return dst.Close()
}
