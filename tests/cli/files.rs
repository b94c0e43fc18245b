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
