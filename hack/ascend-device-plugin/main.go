// Command ascend-device-plugin is an emulated Huawei Ascend device plugin for
// nodes that have no NPUs. It speaks the kubelet's real device-plugin API
// (v1beta1) and advertises devices the way Huawei's ascend-device-plugin
// (gitee/github Ascend/mind-cluster, component/ascend-device-plugin) does for
// an Atlas 910B training server, so that scheduling, allocation and fault
// handling can be exercised end to end on a laptop-sized cluster.
//
// Deliberately left out, compared with Huawei's plugin:
//   - device nodes (/dev/davinciN, /dev/davinci_manager, /dev/devmm_svm,
//     /dev/hisi_hdc) and mounts: Huawei only adds them when ascend-docker-runtime
//     is NOT used; with it (ASCEND_DOCKER_RUNTIME=True) Allocate returns only
//     environment variables, which is the mode emulated here. There are no
//     device files on this machine anyway.
//   - of what Huawei's plugin writes through the API server, only the
//     device-info ConfigMap and the pod annotation huawei.com/AscendReal are
//     emulated (cluster.go, when --kube-server is given): not the node
//     annotations, nor the HCCL rank table.
//   - NUMA topology on devices: without real hardware any topology would be
//     invented, and a nil topology means "no preference" to the kubelet.
//   - GetPreferredAllocation: Huawei's plugin does not implement it either.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

const (
	kubeletSocketName = "kubelet.sock"
	// Names of the variables ascend-docker-runtime reads to decide which NPUs
	// to put into the container (ascend-common/api/default_name.go upstream).
	envVisibleDevices = "ASCEND_VISIBLE_DEVICES"
	envRuntimeOptions = "ASCEND_RUNTIME_OPTIONS"
)

type config struct {
	resourceName string
	devices      int
	socketDir    string
	socketName   string
	healthDir    string
	pollInterval time.Duration

	// Writing through the API server (cluster.go); off unless kubeServer is set.
	nodeName            string
	kubeServer          string
	kubeCA              string
	kubeCert            string
	kubeKey             string
	deviceInfoNamespace string
	podResourcesSocket  string
}

type plugin struct {
	v1beta1.UnimplementedDevicePluginServer
	cfg config

	ids      []string       // in physical-id order, so ListAndWatch output is stable
	physical map[string]int // device ID -> physical NPU id

	mu        sync.Mutex
	unhealthy map[string]bool
	// changed is closed (and replaced) whenever device health changes; it is a
	// broadcast to every open ListAndWatch stream.
	changed chan struct{}
}

func newPlugin(cfg config) *plugin {
	// Huawei names a physical device "<device type>-<physical id>" and the
	// device type is the resource name without its "huawei.com/" prefix, so
	// huawei.com/Ascend910 yields Ascend910-0 ... Ascend910-7.
	prefix := cfg.resourceName[strings.LastIndex(cfg.resourceName, "/")+1:]
	p := &plugin{
		cfg:       cfg,
		physical:  make(map[string]int, cfg.devices),
		unhealthy: map[string]bool{},
		changed:   make(chan struct{}),
	}
	for i := 0; i < cfg.devices; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		p.ids = append(p.ids, id)
		p.physical[id] = i
	}
	return p
}

func (p *plugin) snapshot() ([]*v1beta1.Device, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	devs := make([]*v1beta1.Device, 0, len(p.ids))
	for _, id := range p.ids {
		health := v1beta1.Healthy
		if p.unhealthy[id] {
			health = v1beta1.Unhealthy
		}
		devs = append(devs, &v1beta1.Device{ID: id, Health: health})
	}
	return devs, p.changed
}

func (p *plugin) setUnhealthy(now map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := false
	for _, id := range p.ids {
		if now[id] == p.unhealthy[id] {
			continue
		}
		changed = true
		from, to := v1beta1.Healthy, v1beta1.Unhealthy
		if !now[id] {
			from, to = to, from
		}
		log.Printf("health: %s %s -> %s", id, from, to)
	}
	if changed {
		p.unhealthy = now
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

// pollHealth turns the presence of <health-dir>/<device-id> into an
// Unhealthy device. Polling rather than inotify keeps the dependency set to
// grpc and k8s.io/kubelet, and a second of latency is irrelevant for tests
// that inject faults by hand.
func (p *plugin) pollHealth(ctx context.Context) {
	if p.cfg.healthDir == "" {
		return
	}
	t := time.NewTicker(p.cfg.pollInterval)
	defer t.Stop()
	for {
		now := map[string]bool{}
		for _, id := range p.ids {
			if _, err := os.Stat(filepath.Join(p.cfg.healthDir, id)); err == nil {
				now[id] = true
			}
		}
		p.setUnhealthy(now)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *plugin) GetDevicePluginOptions(context.Context, *v1beta1.Empty) (*v1beta1.DevicePluginOptions, error) {
	return p.options(), nil
}

// options mirror Huawei's plugin, which returns empty options: no
// PreStartContainer hook and no preferred allocation, so the kubelet picks
// devices on its own.
func (p *plugin) options() *v1beta1.DevicePluginOptions {
	return &v1beta1.DevicePluginOptions{PreStartRequired: false, GetPreferredAllocationAvailable: false}
}

func (p *plugin) ListAndWatch(_ *v1beta1.Empty, s grpc.ServerStreamingServer[v1beta1.ListAndWatchResponse]) error {
	for {
		devs, changed := p.snapshot()
		if err := s.Send(&v1beta1.ListAndWatchResponse{Devices: devs}); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-s.Context().Done():
			// The kubelet closed the stream, or the server is stopping for a
			// re-registration; either way the kubelet will open a new one.
			return nil
		}
	}
}

func (p *plugin) GetPreferredAllocation(context.Context, *v1beta1.PreferredAllocationRequest) (*v1beta1.PreferredAllocationResponse, error) {
	return nil, status.Error(codes.Unimplemented, "preferred allocation is not supported (as in Huawei's plugin)")
}

func (p *plugin) PreStartContainer(context.Context, *v1beta1.PreStartContainerRequest) (*v1beta1.PreStartContainerResponse, error) {
	return &v1beta1.PreStartContainerResponse{}, nil
}

func (p *plugin) Allocate(_ context.Context, req *v1beta1.AllocateRequest) (*v1beta1.AllocateResponse, error) {
	resp := &v1beta1.AllocateResponse{}
	for _, cr := range req.GetContainerRequests() {
		phys := make([]int, 0, len(cr.GetDevicesIds()))
		for _, id := range cr.GetDevicesIds() {
			n, ok := p.physical[id]
			if !ok {
				return nil, status.Errorf(codes.InvalidArgument, "unknown device %q", id)
			}
			phys = append(phys, n)
		}
		// The kubelet hands IDs over in set order, which is random. Huawei keeps
		// that order; sorting changes nothing for the runtime but makes the
		// value predictable for whoever reads it in tests.
		sort.Ints(phys)
		strs := make([]string, len(phys))
		for i, n := range phys {
			strs[i] = strconv.Itoa(n)
		}
		visible := strings.Join(strs, ",")
		resp.ContainerResponses = append(resp.ContainerResponses, &v1beta1.ContainerAllocateResponse{
			Envs: map[string]string{
				envVisibleDevices: visible,
				// Huawei sets "VIRTUAL" here only for vNPU slices; whole physical
				// NPUs get the variable present but empty.
				envRuntimeOptions: "",
				// Left out on purpose: ASCEND_ALLOW_LINK (Ascend 310B only),
				// WORLD_SIZE/LOCAL_WORLD_SIZE/LOCAL_RANK/MS_WORKER_NUM/
				// MS_LOCAL_WORKER/CM_WORKER_SIZE/CM_LOCAL_WORKER (only with
				// -presetVirtualDevice=false, i.e. dynamic vNPU under volcano),
				// PERF_DUMP_* (only with -enableSlowNode and a ConfigMap), and
				// the HCCL topology file path (Ascend 910A5 only).
			},
		})
		log.Printf("allocate: %v -> %s=%s", cr.GetDevicesIds(), envVisibleDevices, visible)
	}
	return resp, nil
}

func (p *plugin) register(ctx context.Context, kubeletSock string) error {
	conn, err := grpc.NewClient("unix://"+kubeletSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = v1beta1.NewRegistrationClient(conn).Register(ctx, &v1beta1.RegisterRequest{
		Version:      v1beta1.Version,
		Endpoint:     p.cfg.socketName, // the kubelet resolves it relative to its own socket dir
		ResourceName: p.cfg.resourceName,
		Options:      p.options(),
	})
	if err != nil {
		return err
	}
	log.Printf("register: %s with %d devices, endpoint %s, kubelet %s",
		p.cfg.resourceName, len(p.ids), p.cfg.socketName, kubeletSock)
	return nil
}

// run serves and (re-)registers until ctx is cancelled.
func (p *plugin) run(ctx context.Context) error {
	go p.pollHealth(ctx)
	if p.cfg.kubeServer != "" {
		api, err := newAPIClient(p.cfg.kubeServer, p.cfg.kubeCA, p.cfg.kubeCert, p.cfg.kubeKey)
		if err != nil {
			return fmt.Errorf("--kube-server: %w", err)
		}
		go p.report(ctx, api)
	}
	for {
		restart, err := p.serveOnce(ctx)
		if err != nil || !restart {
			return err
		}
	}
}

// serveOnce is one life of the plugin socket: listen, register, and watch for
// a kubelet restart. A restarting kubelet wipes every socket in its
// device-plugins dir and recreates kubelet.sock; it forgets all plugins, so
// either sign means we must come back with a fresh socket and register again.
func (p *plugin) serveOnce(ctx context.Context) (restart bool, err error) {
	sock := filepath.Join(p.cfg.socketDir, p.cfg.socketName)
	kubeletSock := filepath.Join(p.cfg.socketDir, kubeletSocketName)

	// A socket left behind by a previous run would make Listen fail.
	if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	lis, err := net.Listen("unix", sock)
	if err != nil {
		return false, err
	}
	srv := grpc.NewServer()
	v1beta1.RegisterDevicePluginServer(srv, p)
	go srv.Serve(lis)
	defer func() {
		// Stop, not GracefulStop: ListAndWatch streams never end on their own.
		srv.Stop()
		_ = os.Remove(sock)
	}()

	var registeredTo os.FileInfo // the kubelet.sock we registered with
	var lastErr string
	t := time.NewTicker(p.cfg.pollInterval)
	defer t.Stop()
	for {
		if _, err := os.Stat(sock); err != nil {
			log.Printf("socket %s is gone, re-registering", sock)
			return true, nil
		}
		kfi, kerr := os.Stat(kubeletSock)
		switch {
		case registeredTo == nil && kerr == nil:
			if err := p.register(ctx, kubeletSock); err != nil {
				// Log each distinct failure once rather than every tick, and not
				// at all when we are shutting down mid-call.
				if ctx.Err() == nil && err.Error() != lastErr {
					log.Printf("register: failed, will retry: %v", err)
					lastErr = err.Error()
				}
			} else {
				registeredTo = kfi
			}
		case registeredTo != nil && kerr == nil && !sameSocket(registeredTo, kfi):
			log.Printf("%s was recreated, re-registering", kubeletSock)
			return true, nil
		}
		select {
		case <-ctx.Done():
			log.Printf("stopping, removing %s", sock)
			return false, nil
		case <-t.C:
		}
	}
}

// sameSocket also compares mtimes because a file deleted and created again in
// quick succession can get the same inode number back.
func sameSocket(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime())
}

func parseFlags(args []string) (config, error) {
	fset := flag.NewFlagSet("ascend-device-plugin", flag.ContinueOnError)
	var c config
	fset.StringVar(&c.resourceName, "resource-name", "huawei.com/Ascend910", "extended resource name to advertise")
	fset.IntVar(&c.devices, "devices", 8, "number of emulated NPUs")
	fset.StringVar(&c.socketDir, "socket-dir", v1beta1.DevicePluginPath, "kubelet device-plugin directory (holds kubelet.sock)")
	fset.StringVar(&c.socketName, "socket-name", "", "plugin socket file name in --socket-dir (default <device type>.sock, as Huawei names it)")
	fset.StringVar(&c.healthDir, "health-dir", "", "if set, a file named <device-id> in this dir marks that device Unhealthy")
	fset.DurationVar(&c.pollInterval, "poll-interval", time.Second, "how often to check the health dir and the sockets")
	fset.StringVar(&c.kubeServer, "kube-server", "", "if set, the API server URL to publish the device-info ConfigMap and pod annotations to")
	fset.StringVar(&c.kubeCA, "kube-ca", "", "CA certificate file of --kube-server")
	fset.StringVar(&c.kubeCert, "kube-cert", "", "client certificate file for --kube-server")
	fset.StringVar(&c.kubeKey, "kube-key", "", "client key file for --kube-server")
	fset.StringVar(&c.nodeName, "node-name", "", "this node's name (names the device-info ConfigMap)")
	fset.StringVar(&c.deviceInfoNamespace, "device-info-namespace", "kube-system", "namespace of the device-info ConfigMap")
	fset.StringVar(&c.podResourcesSocket, "pod-resources-socket", "/var/lib/kubelet/pod-resources/kubelet.sock", "the kubelet's PodResources API socket")
	if err := fset.Parse(args); err != nil {
		return c, err
	}
	slash := strings.LastIndex(c.resourceName, "/")
	if slash <= 0 || slash == len(c.resourceName)-1 {
		return c, fmt.Errorf("--resource-name %q must look like vendor/name", c.resourceName)
	}
	if c.devices < 1 {
		return c, fmt.Errorf("--devices must be at least 1")
	}
	if c.pollInterval <= 0 {
		return c, fmt.Errorf("--poll-interval must be positive")
	}
	if c.kubeServer != "" && (c.nodeName == "" || c.kubeCA == "" || c.kubeCert == "" || c.kubeKey == "") {
		return c, fmt.Errorf("--kube-server needs --node-name, --kube-ca, --kube-cert and --kube-key")
	}
	if c.socketName == "" {
		c.socketName = c.resourceName[slash+1:] + ".sock"
	}
	// grpc's unix:// target needs an absolute path.
	abs, err := filepath.Abs(c.socketDir)
	if err != nil {
		return c, err
	}
	c.socketDir = abs
	return c, nil
}

func main() {
	log.SetOutput(os.Stderr)
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Printf("start: %s x%d, socket %s, health dir %q",
		cfg.resourceName, cfg.devices, filepath.Join(cfg.socketDir, cfg.socketName), cfg.healthDir)
	if err := newPlugin(cfg).run(ctx); err != nil {
		log.Fatal(err)
	}
}
