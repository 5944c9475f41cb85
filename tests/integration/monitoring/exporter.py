"""A loopback HTTP endpoint serving a fixed Prometheus exposition text.

Stands in for exporters this machine cannot run (npu-exporter needs NPUs):
the text uses their real metric names and labels, so the dashboard's joins
and the alert rules are evaluated by the real Prometheus on realistic series.
"""
import http.server
import threading

from tests.harness.ports import free_port


class StaticExporter:
    def __init__(self, text: str = ""):
        self.text = text
        self.port = free_port()
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                body = exporter.text.encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "StaticExporter":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def npu_exporter_text(namespace: str, pods, chips_per_pod: int = 2) -> str:
    """npu-exporter's chip metrics (REFERENCE §4) for the given training pods."""
    lines = []
    for name, help_text in [("npu_chip_info_utilization", "NPU AI core utilization (%)"),
                            ("npu_chip_info_hbm_used_memory", "HBM used (MB)"),
                            ("npu_chip_info_hbm_total_memory", "HBM total (MB)"),
                            ("npu_chip_info_health_status", "1 healthy, 0 unhealthy"),
                            ("npu_chip_info_temperature", "chip temperature (C)"),
                            ("npu_chip_info_power", "chip power (W)")]:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        value = {"npu_chip_info_utilization": 87, "npu_chip_info_hbm_used_memory": 41000,
                 "npu_chip_info_hbm_total_memory": 65536, "npu_chip_info_health_status": 1,
                 "npu_chip_info_temperature": 61, "npu_chip_info_power": 310}[name]
        chip = 0
        for pod in pods:
            for _ in range(chips_per_pod):
                lines.append(f'{name}{{id="{chip}",model_name="Ascend910B",namespace="{namespace}",'
                             f'pod_name="{pod}",container_name="stage"}} {value}')
                chip += 1
    return "\n".join(lines) + "\n"
