package hosting

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
	"github.com/darse/darse/internal/template"
)

// MaxForwards bounds one site's port forwards (its SSH access aside):
// the 10,001 host ports of 40000-50000 are shared by every site.
const MaxForwards = 5

// ForwardRequest is a port forward asked for: a container port of the
// site's web service, over tcp (the default) or udp.
type ForwardRequest struct {
	Port  int
	Proto string
}

// normalize checks the request and fills in the default protocol.
func (r ForwardRequest) normalize() (ForwardRequest, error) {
	if r.Port < 1 || r.Port > 65535 {
		return r, inputErr(&site.FieldError{Field: "port", Value: strconv.Itoa(r.Port), Rule: "must be a port number from 1 to 65535"})
	}
	if r.Proto == "" {
		r.Proto = string(labels.TCP)
	}
	if r.Proto != string(labels.TCP) && r.Proto != string(labels.UDP) {
		return r, inputErr(&site.FieldError{Field: "protocol", Value: r.Proto, Rule: "must be tcp or udp"})
	}
	return r, nil
}

// CheckForward answers at once what AddForward would refuse, counting the
// forwards still queued (not yet stored) beside the stored ones: a site
// that does not exist or has files edited by hand, a bad port or
// protocol, a port already forwarded, or one forward over MaxForwards.
func (h *Hosting) CheckForward(ctx context.Context, name string, req ForwardRequest, queued []ForwardRequest) error {
	s, err := h.get(ctx, name)
	if err != nil {
		return err
	}
	if req, err = req.normalize(); err != nil {
		return err
	}
	if err := h.checkDrift(ctx, s); err != nil {
		return err
	}
	t, err := template.Load(h.cfg.TemplatesDir(), s.Template)
	if err != nil {
		return err
	}
	members, err := h.memberForwards(ctx, name, t)
	if err != nil {
		return err
	}
	for _, f := range members {
		if f.ContainerPort == req.Port && f.Proto == req.Proto {
			return inputErr(&site.FieldError{Field: "port", Value: strconv.Itoa(req.Port), Rule: "is already forwarded, on host port " + strconv.Itoa(f.HostPort)})
		}
	}
	for _, q := range queued {
		if q, _ := q.normalize(); q == req {
			return inputErr(&site.FieldError{Field: "port", Value: strconv.Itoa(req.Port), Rule: "is already being forwarded"})
		}
	}
	if len(members)+len(queued) >= MaxForwards {
		return errTooManyForwards(req.Port)
	}
	return nil
}

func errTooManyForwards(port int) error {
	return inputErr(&site.FieldError{Field: "port", Value: strconv.Itoa(port), Rule: "cannot be added: a site has at most " + strconv.Itoa(MaxForwards) + " forwards"})
}

// memberForwards are the site's stored port forwards, its SSH access aside.
func (h *Hosting) memberForwards(ctx context.Context, name string, t *template.Template) ([]*store.Forward, error) {
	fs, err := h.store.ListForwards(ctx, name)
	if err != nil {
		return nil, err
	}
	var out []*store.Forward
	for _, f := range fs {
		if !isSSH(t, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// AddForward exposes a port of the site's web service on a host port
// allocated from 40000-50000: the forward is stored, the folder rendered
// again with its exposure labels (read by the firewall watcher) and the
// service recreated. If the folder cannot be rendered the forward is
// dropped again. Asked again for the same port, it returns the forward
// already there and converges (so an interrupted call can simply be
// repeated). The site's forwards never exceed MaxForwards, whatever was
// queued.
func (h *Hosting) AddForward(ctx context.Context, name string, req ForwardRequest) (*store.Forward, reconcile.Plan, error) {
	s, err := h.get(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if req, err = req.normalize(); err != nil {
		return nil, nil, err
	}
	if err := h.checkDrift(ctx, s); err != nil {
		return nil, nil, err
	}
	t, err := template.Load(h.cfg.TemplatesDir(), s.Template)
	if err != nil {
		return nil, nil, err
	}
	existing, err := h.memberForwards(ctx, name, t)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range existing {
		if f.Service == t.Web.Service && f.ContainerPort == req.Port && f.Proto == req.Proto {
			files, err := h.renderStored(ctx, s)
			if err != nil {
				return nil, nil, err
			}
			_, plan, err := h.write(ctx, s, files)
			return f, plan, err
		}
	}
	if len(existing) >= MaxForwards {
		return nil, nil, errTooManyForwards(req.Port)
	}
	f, err := h.store.AddForward(ctx, store.Forward{Site: name, Service: t.Web.Service, ContainerPort: req.Port, Proto: req.Proto})
	if errors.Is(err, store.ErrForwardExists) || errors.Is(err, store.ErrNoFreePort) {
		return nil, nil, inputErr(&site.FieldError{Field: "port", Value: strconv.Itoa(req.Port), Rule: errors.Unwrap(err).Error()})
	}
	if err != nil {
		return nil, nil, err
	}
	files, err := h.renderStored(ctx, s)
	if err != nil {
		h.store.DeleteForward(context.WithoutCancel(ctx), name, f.HostPort)
		return nil, nil, err
	}
	_, plan, err := h.write(ctx, s, files)
	if err == nil {
		h.log.Info("port forwarded", "site", name, "port", req.Port, "host_port", f.HostPort, "proto", req.Proto)
	}
	return f, plan, err
}

// RemoveForward stops forwarding the site's host port.
func (h *Hosting) RemoveForward(ctx context.Context, name string, hostPort int) (reconcile.Plan, error) {
	s, err := h.get(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := h.checkDrift(ctx, s); err != nil {
		return nil, err
	}
	if err := h.refuseSSHForward(ctx, s, hostPort); err != nil {
		return nil, err
	}
	if err := h.store.DeleteForward(ctx, name, hostPort); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, inputErr(&site.FieldError{Field: "host port", Value: strconv.Itoa(hostPort), Rule: "is not forwarded for site " + name})
		}
		return nil, err
	}
	files, err := h.renderStored(ctx, s)
	if err != nil {
		return nil, err
	}
	_, plan, err := h.write(ctx, s, files)
	return plan, err
}

// exposures renders the site's forwards as darse.expose labels on the
// service each forwards to: members' port forwards (fwd<hostport>) on the
// web service, SSH access ("ssh") on the template's SSH service.
func (h *Hosting) exposures(ctx context.Context, name string, t *template.Template) (map[string]map[string]string, error) {
	fs, err := h.store.ListForwards(ctx, name)
	if err != nil {
		return nil, err
	}
	byService := map[string][]labels.Exposure{}
	for _, f := range fs {
		x := labels.Exposure{Name: fmt.Sprintf("fwd%d", f.HostPort), Protocol: labels.Protocol(f.Proto), Port: f.ContainerPort, HostPort: f.HostPort}
		if isSSH(t, f) {
			x.Name = sshExposure
		}
		byService[f.Service] = append(byService[f.Service], x)
	}
	out := make(map[string]map[string]string, len(byService))
	for svc, xs := range byService {
		xl, err := labels.Expose(xs)
		if err != nil {
			return nil, fmt.Errorf("site %q forwards: %w", name, err)
		}
		out[svc] = xl
	}
	return out, nil
}
