package panel

import (
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/darse/darse/internal/hosting"
	tmpl "github.com/darse/darse/internal/template"
)

var errNoEngine = errors.New("this panel has no connection to the Docker engine")

// logsPage shows the last lines of one of the site's services; the page's
// script follows them.
func (s *Server) logsPage(c *gin.Context) error {
	ctx := c.Request.Context()
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	status, err := s.sites.Status(ctx, st.Name)
	if err != nil {
		return err
	}
	tail, _ := strconv.Atoi(c.DefaultQuery("tail", "200"))
	if tail < 1 || tail > 2000 {
		tail = 200
	}
	v := logsView{Page: s.page(c, "Logs of "+st.Name), Site: st.Name, Tail: tail}
	v.Page.Nav = "sites"
	want := c.Query("service")
	if want == "" {
		want = s.webService(st.Template, status.Services)
	}
	for _, svc := range status.Services {
		v.Services = append(v.Services, svc.Service)
		if svc.Service == want {
			v.Service, v.Container = svc.Service, svc.ContainerID
		}
	}
	if v.Service == "" && want != "" {
		return errNotFound
	}
	switch {
	case s.engine == nil:
		v.Problem = errNoEngine.Error()
	case v.Container == "":
		v.Problem = "This service has no container: start the site first."
	default:
		if v.Text, err = s.engine.Logs(ctx, v.Container, tail); err != nil {
			return err
		}
	}
	if wantsJSON(c) {
		c.JSON(http.StatusOK, logsJSON{Service: v.Service, Text: v.Text, Problem: v.Problem})
		return nil
	}
	s.render(c, http.StatusOK, "logs", v)
	return nil
}

// webService is the service the logs page opens on: the template's web
// service (what visitors reach), else the first one.
func (s *Server) webService(template string, services []hosting.ServiceStatus) string {
	if t, err := tmpl.Load(s.cfg.TemplatesDir, template); err == nil {
		for _, svc := range services {
			if svc.Service == t.Web.Service {
				return svc.Service
			}
		}
	} else {
		s.log.Warn("read the site's template for its web service", "template", template, "err", err)
	}
	if len(services) > 0 {
		return services[0].Service
	}
	return ""
}

// siteUsage is the CPU and memory each running container of the site
// uses now, for the site page's script.
func (s *Server) siteUsage(c *gin.Context) error {
	ctx := c.Request.Context()
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	if s.engine == nil {
		return errNoEngine
	}
	status, err := s.sites.Status(ctx, st.Name)
	if err != nil {
		return err
	}
	out := []serviceUsage{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, svc := range status.Services {
		if svc.State != "running" || svc.ContainerID == "" {
			continue
		}
		wg.Add(1)
		go func() { // each sample takes the engine a second: take them together
			defer wg.Done()
			u, err := s.engine.Usage(ctx, svc.ContainerID)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			out = append(out, serviceUsage{Service: svc.Service, CPU: strconv.FormatFloat(u.CPUPercent, 'f', 1, 64) + "%",
				Memory: mib(u.MemBytes) + " / " + mib(u.MemLimit), MemPercent: percent(u.MemBytes, u.MemLimit)})
		}()
	}
	wg.Wait()
	c.JSON(http.StatusOK, out)
	return nil
}

func mib(b uint64) string {
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB"
}

func percent(a, b uint64) int {
	if b == 0 {
		return 0
	}
	return int(a * 100 / b)
}
