//! Files from the model (`services.<name>.files`): a template rendered against the stack
//! (replicas, ports, profile, variables by name), carried by every backend as a read-only
//! mount of `files/<service>/<path>`; template errors are the user's, at the template's
//! line, and write nothing; a secret's value never reaches a template.

use crate::support::Berth;

const STACK: &str = r#"
let berth = import "berth.ncl" in
fun profile => {
  name = "web",
  services.api = { image = "busybox:1.36", ports = [{ target = 8000 }], replicas = 3 },
  services.proxy = {
    image = "nginx:1.27",
    files."/etc/nginx/conf.d/upstreams.conf" = { template = "templates/upstreams.conf.j2" },
    files."/etc/motd" = { content = "built for %{profile.name}\n" },
  },
  variables.DB_PASSWORD = { description = "Database password.", secret = true, dev_value = "hunter2" },
  variables.REGION = { description = "Region.", default = "eu-west" },
}
"#;

const UPSTREAMS: &str = "upstream api {
{% for n in range(services.api.replicas) %}    server web-api-{{ n + 1 }}:{{ services.api.ports[0].target }};
{% endfor %}}
# {{ stack.name }} / {{ profile.name }} / {{ service }} / region {{ variables.REGION.default }} / password secret: {{ variables.DB_PASSWORD.secret }}
";

fn project(template: &str) -> Berth {
    Berth::schemas_only()
        .file("modules/stacks/web.ncl", STACK)
        .file("templates/upstreams.conf.j2", template)
        .args(["build", "--stack", "web", "--no-profile"])
}

#[test]
fn a_template_is_rendered_against_the_stack_and_mounted_everywhere() {
    let (out, _dir) = project(UPSTREAMS).run();
    out.code(0);
    let dir = out.root.join("out/web/none");
    let read = |path: &str| {
        std::fs::read_to_string(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    assert_eq!(
        read("files/proxy/etc/nginx/conf.d/upstreams.conf"),
        "upstream api {\n    server web-api-1:8000;\n    server web-api-2:8000;\n    server web-api-3:8000;\n}\n# web / none / proxy / region eu-west / password secret: True\n"
    );
    assert_eq!(read("files/proxy/etc/motd"), "built for none\n");
    let compose = read("compose.yaml");
    assert!(
        compose.contains("source: ./files/proxy/etc/nginx/conf.d/upstreams.conf\n        target: /etc/nginx/conf.d/upstreams.conf\n        read_only: true"),
        "{compose}"
    );
    let manifest = read("k8s/proxy.yaml");
    assert!(manifest.contains("subPath: upstreams.conf"), "{manifest}");
    assert!(
        manifest.contains("server web-api-2:8000;"),
        "the ConfigMap carries the text: {manifest}"
    );
    assert!(!manifest.contains("hunter2") && !compose.contains("hunter2"));
}

#[test]
fn an_undefined_variable_is_an_error_at_the_template_line() {
    let (out, _dir) = project("upstream api {\n  server {{ services.api.host }};\n}\n").run();
    out.code(2)
        .stderr_contains("templates/upstreams.conf.j2:2:")
        .stderr_contains("services.proxy.files./etc/nginx/conf.d/upstreams.conf.template")
        .stderr_contains("undefined")
        .wrote_nothing();
}

#[test]
fn a_secret_value_never_reaches_a_template() {
    let (out, _dir) = project("{{ variables.DB_PASSWORD.dev_value }}\n").run();
    out.code(2)
        .stderr_contains("templates/upstreams.conf.j2:1:")
        .wrote_nothing();
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[test]
fn a_syntax_error_or_an_unknown_filter_is_an_error_at_its_line() {
    for (template, line) in [
        ("a\nb\n{% for x in %}\n", 3),
        ("a\n{{ stack.name | no_such_filter }}\n", 2),
        ("{{ stack.name | int }}\n", 1),
    ] {
        let (out, _dir) = project(template).run();
        out.code(2)
            .stderr_contains(&format!("templates/upstreams.conf.j2:{line}:"))
            .wrote_nothing();
    }
}

#[test]
fn a_missing_template_is_named_at_its_field() {
    let (out, _dir) = Berth::schemas_only()
        .file("modules/stacks/web.ncl", STACK)
        .args(["build", "--stack", "web", "--no-profile"])
        .run();
    out.code(2)
        .stderr_contains("web.ncl:")
        .stderr_contains("cannot read template `templates/upstreams.conf.j2`")
        .wrote_nothing();
}

#[test]
fn a_file_needs_an_absolute_path_and_one_source() {
    let stack = STACK.replace(
        r#"files."/etc/motd" = { content = "built for %{profile.name}\n" },"#,
        r#"files."etc/motd" = { content = "x" }, files."/etc/both" = { content = "x", template = "templates/upstreams.conf.j2" },"#,
    );
    let (out, _dir) = Berth::schemas_only()
        .file("modules/stacks/web.ncl", &stack)
        .file("templates/upstreams.conf.j2", UPSTREAMS)
        .args(["build", "--stack", "web", "--no-profile"])
        .run();
    out.code(2)
        .stderr_contains("`etc/motd` is no absolute file path")
        .stderr_contains("services.proxy.files./etc/both: set one of `content` and `template`")
        .wrote_nothing();
}

/// FreshPoC's Promtail reads the configuration the loki module writes: a scrape job per
/// log folder it mounts, pushing to the stack's Loki.
#[test]
fn promtail_ships_the_folders_it_mounts_to_loki() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--stack", "freshpoc", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let path = out
        .root
        .join("out/freshpoc/prod-lite/files/promtail/etc/promtail/config.yml");
    let text = std::fs::read_to_string(path).expect("read promtail config");
    let config: serde_json::Value = serde_saphyr::from_str(&text).expect("YAML");
    assert_eq!(
        config["clients"][0]["url"],
        "http://loki:3100/loki/api/v1/push"
    );
    let paths: Vec<&str> = config["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .map(|job| {
            job["static_configs"][0]["labels"]["__path__"]
                .as_str()
                .expect("__path__")
        })
        .collect();
    assert_eq!(
        paths,
        ["/var/log/**/*log", "/var/lib/docker/containers/**/*log"]
    );
}

/// A stack behind the library's nginx module: its configuration is a library template
/// (`berth:`) rendered with the module's routes as `params`.
fn proxied(api_replicas: u32, routes: &str) -> Berth {
    let stack = format!(
        r#"
let nginx = import "services/nginx.ncl" in
fun profile => nginx {{ https_port = 443, routes = {routes} }} & {{
  name = "web",
  services.api = {{
    image = "busybox:1.36",
    ports = [{{ target = 8000 }}],
    replicas = {api_replicas},
    healthcheck.test = ["true"],
  }},
}}
"#
    );
    Berth::schemas_only()
        .file("modules/stacks/web.ncl", &stack)
        .args(["build", "--stack", "web", "--no-profile"])
}

const API_ROUTE: &str = r#"[{ path = "/", service = "api", port = 8000 }]"#;

#[test]
fn the_nginx_module_writes_its_proxy_from_the_library_template_and_follows_the_replicas() {
    let conf = |n_replicas: u32| {
        let (out, _dir) = proxied(n_replicas, API_ROUTE).run();
        out.code(0);
        let dir = out.root.join("out/web/none");
        let compose = std::fs::read_to_string(dir.join("compose.yaml")).expect("compose");
        assert!(
            compose.contains("source: ./files/nginx/etc/nginx/conf.d/default.conf\n        target: /etc/nginx/conf.d/default.conf\n        read_only: true"),
            "{compose}"
        );
        std::fs::read_to_string(dir.join("files/nginx/etc/nginx/conf.d/default.conf"))
            .expect("nginx configuration")
    };
    let (one, three) = (conf(1), conf(3));
    assert!(
        one.contains("# api: 1 replica. ")
            && one.contains("upstream api_8000 {\n    server api:8000;\n    keepalive 8;\n}"),
        "{one}"
    );
    assert!(
        three.contains("# api: 3 replicas. ") && three.contains("    keepalive 24;\n"),
        "{three}"
    );
    assert!(
        three.contains("    location / {\n        proxy_pass http://api_8000;\n"),
        "{three}"
    );
    assert!(
        three.contains("listen 443 ssl;")
            && three.contains("return 301 https://$host$request_uri;"),
        "{three}"
    );
}

/// The routes meet the final stack in the template: a port the service does not declare
/// is an error at the library template's line (a service that does not exist already is,
/// at the module's `depends_on`).
#[test]
fn a_route_to_an_undeclared_port_is_an_error_at_the_library_template_line() {
    let (out, _dir) = proxied(1, r#"[{ path = "/", service = "api", port = 9000 }]"#).run();
    out.code(2)
        .stderr_contains("berth:modules/services/nginx.conf.j2:")
        .stderr_contains("services.nginx.files./etc/nginx/conf.d/default.conf.template")
        .stderr_contains("api declares no port 9000")
        .wrote_nothing();
    let (out, _dir) = proxied(1, r#"[{ path = "/", service = "ghost", port = 80 }]"#).run();
    out.code(2)
        .stderr_contains("services.nginx.depends_on.ghost: unknown service `ghost`")
        .wrote_nothing();
}

/// A project that vendors the library's template (`berth library export`) renders its copy,
/// as its vendored modules win over the built-in ones.
#[test]
fn a_vendored_library_template_wins_over_the_built_in_one() {
    let (out, _dir) = proxied(1, API_ROUTE)
        .file(
            "modules/services/nginx.conf.j2",
            "# vendored, tls {{ params.tls }}\n",
        )
        .run();
    out.code(0);
    let text = std::fs::read_to_string(
        out.root
            .join("out/web/none/files/nginx/etc/nginx/conf.d/default.conf"),
    )
    .expect("nginx configuration");
    assert_eq!(text, "# vendored, tls True\n");
}

#[test]
fn a_route_path_that_is_no_nginx_token_is_refused() {
    let (out, _dir) = proxied(1, r#"[{ path = "/a b", service = "api", port = 8000 }]"#).run();
    out.code(2)
        .stderr_contains("expected a URL path prefix")
        .wrote_nothing();
}

#[test]
fn the_certificate_folder_is_a_tls_secret_on_kubernetes() {
    let (out, _dir) = proxied(1, API_ROUTE).run();
    out.code(0);
    let dir = out.root.join("out/web/none");
    let manifest = std::fs::read_to_string(dir.join("k8s/nginx.yaml")).expect("manifest");
    assert!(manifest.contains("secretName: nginx-tls"), "{manifest}");
}

/// FreshPoC's Loki reads the configuration the loki module writes. No Loki binary installs
/// from the registries (Debian's `loki` is a genetics program), so the file is checked
/// structurally: every key is one Loki v3.1.1 reads (its yaml tags in pkg/loki/loki.go,
/// pkg/loki/common/common.go, pkg/storage/config/schema_config.go,
/// pkg/compactor/compactor.go, pkg/validation/limits.go), every path is on Loki's volume,
/// and retention is on with the store it needs.
#[test]
fn loki_reads_a_configuration_with_its_retention_and_paths_on_its_volume() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--stack", "freshpoc", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let dir = out.root.join("out/freshpoc/prod-lite");
    let compose = std::fs::read_to_string(dir.join("compose.yaml")).expect("compose");
    // The keys below were checked against this version; a new image needs them checked again.
    assert!(
        compose.contains("image: docker.io/grafana/loki:3.1.1\n"),
        "{compose}"
    );
    assert!(
        compose.contains("command: [-config.file=/etc/loki/config.yaml]\n")
            && compose.contains("source: loki_data\n        target: /loki\n"),
        "{compose}"
    );
    let text =
        std::fs::read_to_string(dir.join("files/loki/etc/loki/config.yaml")).expect("loki config");
    let config: serde_json::Value = serde_saphyr::from_str(&text).expect("YAML");
    let keys = |value: &serde_json::Value| -> Vec<String> {
        let mut keys: Vec<String> = value
            .as_object()
            .expect("a mapping")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(&config),
        [
            "auth_enabled",
            "common",
            "compactor",
            "limits_config",
            "schema_config",
            "server"
        ]
    );
    assert_eq!(
        keys(&config["common"]),
        [
            "instance_addr",
            "path_prefix",
            "replication_factor",
            "ring",
            "storage"
        ]
    );
    assert_eq!(
        keys(&config["compactor"]),
        [
            "delete_request_store",
            "retention_enabled",
            "working_directory"
        ]
    );
    assert_eq!(config["compactor"]["retention_enabled"], true);
    assert_eq!(config["compactor"]["delete_request_store"], "filesystem");
    assert_eq!(config["limits_config"]["retention_period"], "30d");
    let schema = &config["schema_config"]["configs"][0];
    assert_eq!(
        (&schema["store"], &schema["schema"], &schema["object_store"]),
        (&"tsdb".into(), &"v13".into(), &"filesystem".into())
    );
    let filesystem = &config["common"]["storage"]["filesystem"];
    for path in [
        &config["common"]["path_prefix"],
        &filesystem["chunks_directory"],
        &filesystem["rules_directory"],
        &config["compactor"]["working_directory"],
    ] {
        let path = path.as_str().expect("a path");
        assert!(
            path == "/loki" || path.starts_with("/loki/"),
            "{path} is off the volume"
        );
    }
}

/// A certificate folder is the operator's files on the host: only a bind may be one.
#[test]
fn only_a_bind_mount_may_be_a_certificate_folder() {
    let (out, _dir) = Berth::schemas_only()
        .file(
            "modules/stacks/web.ncl",
            r#"fun profile => {
  name = "web",
  services.web = { image = "nginx:1.27", volumes = [{ source = "certs", target = "/certs", tls_certificate = true }] },
  volumes.certs = {},
}
"#,
        )
        .args(["build", "--stack", "web", "--no-profile"])
        .run();
    out.code(2)
        .stderr_contains("web.ncl:")
        .stderr_contains(
            "services.web.volumes[0].tls_certificate: a certificate folder is a bind mount",
        )
        .wrote_nothing();
}
