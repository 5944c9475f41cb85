package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

const waitFor = 10 * time.Second

// fakeKubelet is the kubelet's side of registration only; the test itself
// plays the kubelet's device-manager client afterwards.
type fakeKubelet struct {
	v1beta1.UnimplementedRegistrationServer
	path string
	srv  *grpc.Server
	regs chan *v1beta1.RegisterRequest
}

func (k *fakeKubelet) Register(_ context.Context, r *v1beta1.RegisterRequest) (*v1beta1.Empty, error) {
	k.regs <- r
	return &v1beta1.Empty{}, nil
}

func (k *fakeKubelet) start(t *testing.T) {
	t.Helper()
	lis, err := net.Listen("unix", k.path)
	if err != nil {
		t.Fatal(err)
	}
	k.srv = grpc.NewServer()
	v1beta1.RegisterRegistrationServer(k.srv, k)
	go k.srv.Serve(lis)
}

// stop also unlinks kubelet.sock, as net.UnixListener removes its path on Close.
func (k *fakeKubelet) stop() { k.srv.Stop() }

func (k *fakeKubelet) expectRegister(t *testing.T, wantEndpoint string) {
	t.Helper()
	select {
	case r := <-k.regs:
		if r.ResourceName != "huawei.com/Ascend910" || r.Version != v1beta1.Version || r.Endpoint != wantEndpoint {
			t.Fatalf("Register got resource %q version %q endpoint %q", r.ResourceName, r.Version, r.Endpoint)
		}
		if r.Options.GetGetPreferredAllocationAvailable() || r.Options.GetPreStartRequired() {
			t.Fatalf("Register options %+v, want none", r.Options)
		}
	case <-time.After(waitFor):
		t.Fatal("no Register call")
	}
}

func dialPlugin(t *testing.T, sock string) v1beta1.DevicePluginClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return v1beta1.NewDevicePluginClient(conn)
}

func recvHealth(t *testing.T, s grpc.ServerStreamingClient[v1beta1.ListAndWatchResponse]) map[string]string {
	t.Helper()
	type result struct {
		r   *v1beta1.ListAndWatchResponse
		err error
	}
	ch := make(chan result, 1)
	go func() { r, err := s.Recv(); ch <- result{r, err} }()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("ListAndWatch Recv: %v", res.err)
		}
		got := map[string]string{}
		for _, d := range res.r.Devices {
			got[d.ID] = d.Health
		}
		if len(got) != len(res.r.Devices) {
			t.Fatalf("duplicate device IDs in %v", res.r.Devices)
		}
		return got
	case <-time.After(waitFor):
		t.Fatal("no ListAndWatch update")
		return nil
	}
}

func wantHealth(t *testing.T, got map[string]string, unhealthy string) {
	t.Helper()
	if len(got) != 8 {
		t.Fatalf("got %d devices, want 8: %v", len(got), got)
	}
	for i := 0; i < 8; i++ {
		id := fmt.Sprintf("Ascend910-%d", i)
		want := v1beta1.Healthy
		if id == unhealthy {
			want = v1beta1.Unhealthy
		}
		if got[id] != want {
			t.Fatalf("device %s: health %q, want %q (all: %v)", id, got[id], want, got)
		}
	}
}

func TestPluginOverGRPC(t *testing.T) {
	// os.MkdirTemp rather than t.TempDir: unix socket paths are limited to
	// ~108 bytes and t.TempDir embeds the (long) test name.
	dir, err := os.MkdirTemp("", "adp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	healthDir := filepath.Join(dir, "health")
	if err := os.Mkdir(healthDir, 0o755); err != nil {
		t.Fatal(err)
	}

	kubelet := &fakeKubelet{path: filepath.Join(dir, "kubelet.sock"), regs: make(chan *v1beta1.RegisterRequest, 10)}
	kubelet.start(t)
	t.Cleanup(kubelet.stop)

	cfg, err := parseFlags([]string{"--socket-dir", dir, "--health-dir", healthDir, "--poll-interval", "100ms"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- newPlugin(cfg).run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	kubelet.expectRegister(t, "Ascend910.sock")
	sock := filepath.Join(dir, "Ascend910.sock")
	client := dialPlugin(t, sock)

	opts, err := client.GetDevicePluginOptions(ctx, &v1beta1.Empty{})
	if err != nil || opts.GetGetPreferredAllocationAvailable() {
		t.Fatalf("GetDevicePluginOptions = %+v, %v", opts, err)
	}

	stream, err := client.ListAndWatch(ctx, &v1beta1.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	wantHealth(t, recvHealth(t, stream), "")

	t.Run("Allocate", func(t *testing.T) {
		resp, err := client.Allocate(ctx, &v1beta1.AllocateRequest{ContainerRequests: []*v1beta1.ContainerAllocateRequest{
			{DevicesIds: []string{"Ascend910-6", "Ascend910-1", "Ascend910-3", "Ascend910-4"}},
			{DevicesIds: []string{"Ascend910-0"}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.ContainerResponses) != 2 {
			t.Fatalf("got %d container responses, want 2", len(resp.ContainerResponses))
		}
		c := resp.ContainerResponses[0]
		if got := c.Envs["ASCEND_VISIBLE_DEVICES"]; got != "1,3,4,6" {
			t.Errorf("ASCEND_VISIBLE_DEVICES = %q, want 1,3,4,6", got)
		}
		if v, ok := c.Envs["ASCEND_RUNTIME_OPTIONS"]; !ok || v != "" {
			t.Errorf("ASCEND_RUNTIME_OPTIONS = %q (present %v), want present and empty", v, ok)
		}
		if len(c.Devices) != 0 || len(c.Mounts) != 0 {
			t.Errorf("got devices %v mounts %v, want none", c.Devices, c.Mounts)
		}
		if got := resp.ContainerResponses[1].Envs["ASCEND_VISIBLE_DEVICES"]; got != "0" {
			t.Errorf("second container ASCEND_VISIBLE_DEVICES = %q, want 0", got)
		}

		if _, err := client.Allocate(ctx, &v1beta1.AllocateRequest{ContainerRequests: []*v1beta1.ContainerAllocateRequest{
			{DevicesIds: []string{"Ascend910-8"}},
		}}); err == nil {
			t.Error("Allocate of an unknown device succeeded")
		}
	})

	t.Run("Health", func(t *testing.T) {
		fault := filepath.Join(healthDir, "Ascend910-2")
		if err := os.WriteFile(fault, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		wantHealth(t, recvHealth(t, stream), "Ascend910-2")
		if err := os.Remove(fault); err != nil {
			t.Fatal(err)
		}
		wantHealth(t, recvHealth(t, stream), "")
	})

	t.Run("KubeletRestart", func(t *testing.T) {
		kubelet.stop()
		if _, err := os.Stat(kubelet.path); !os.IsNotExist(err) {
			t.Fatalf("kubelet.sock still there after stop: %v", err)
		}
		kubelet.start(t)
		kubelet.expectRegister(t, "Ascend910.sock")

		// The old stream belongs to the previous registration and must end.
		ended := make(chan error, 1)
		go func() {
			for {
				if _, err := stream.Recv(); err != nil {
					ended <- err
					return
				}
			}
		}()
		select {
		case <-ended:
		case <-time.After(waitFor):
			t.Fatal("old ListAndWatch stream still open after re-registration")
		}

		// The new socket serves, like the kubelet would find it.
		s2, err := dialPlugin(t, sock).ListAndWatch(ctx, &v1beta1.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		wantHealth(t, recvHealth(t, s2), "")
	})

	t.Run("OwnSocketRemoved", func(t *testing.T) {
		// A real kubelet restart also wipes the plugins' sockets.
		if err := os.Remove(sock); err != nil {
			t.Fatal(err)
		}
		kubelet.expectRegister(t, "Ascend910.sock")
	})

	t.Run("Stop", func(t *testing.T) {
		cancel()
		select {
		case err := <-done:
			done <- err // for the cleanup
			if err != nil {
				t.Fatalf("run returned %v", err)
			}
		case <-time.After(waitFor):
			t.Fatal("run did not return after cancel")
		}
		if _, err := os.Stat(sock); !os.IsNotExist(err) {
			t.Fatalf("plugin socket left behind: %v", err)
		}
	})
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.resourceName != "huawei.com/Ascend910" || c.devices != 8 || c.socketName != "Ascend910.sock" ||
		c.socketDir != "/var/lib/kubelet/device-plugins" || c.pollInterval != time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	for _, bad := range [][]string{{"--devices", "0"}, {"--resource-name", "Ascend910"}, {"--resource-name", "huawei.com/"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%v) accepted", bad)
		}
	}
	if c := newPlugin(config{resourceName: "huawei.com/Ascend310P", devices: 2}); c.ids[1] != "Ascend310P-1" {
		t.Errorf("ids for Ascend310P: %v", c.ids)
	}
}
