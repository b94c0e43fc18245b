//! Renders the reverse proxy's configuration, `nginx/conf.d/default.conf`, when a module
//! names one (`stack.proxy`): one `location` per route, a `/healthz` that answers without
//! the upstreams (the proxy's own healthcheck), and with `tls` a 443 server on the
//! operator's certificate with port 80 redirecting to it. Pure. Service names, ports and
//! paths are validated before this, so every value is one nginx token.

use std::path::PathBuf;

use super::{Artifact, header};
use crate::model::{Route, Stack};

/// Folder of the configuration in the build output, as the nginx module mounts it.
pub const DIR: &str = "nginx/conf.d";

/// The proxy's configuration; none when the stack names no proxy.
pub fn nginx(stack: &Stack) -> Vec<Artifact> {
    let Some(proxy) = &stack.proxy else {
        return Vec::new();
    };
    let mut out = header(stack);
    out.push_str(
        "# The reverse proxy of the stack's `proxy` routes. With TLS, the certificate is the\n",
    );
    out.push_str("# operator's: nginx/certs/tls.crt and tls.key beside the compose file.\n");
    let routes: String = proxy.routes.iter().map(location).collect();
    if proxy.tls {
        out.push_str(&server(
            "listen 80;",
            "    location / {\n        return 301 https://$host$request_uri;\n    }\n",
        ));
        out.push('\n');
        out.push_str(&server(
            "listen 443 ssl;\n    ssl_certificate /etc/nginx/certs/tls.crt;\n    ssl_certificate_key /etc/nginx/certs/tls.key;\n    ssl_protocols TLSv1.2 TLSv1.3;",
            &routes,
        ));
    } else {
        out.push_str(&server("listen 80;", &routes));
    }
    vec![Artifact {
        path: PathBuf::from(DIR).join("default.conf"),
        contents: out,
    }]
}

fn server(listen: &str, locations: &str) -> String {
    format!(
        "server {{\n    {listen}\n    server_name _;\n    client_max_body_size 64m;\n\n    # The proxy's own health, whatever its upstreams do.\n    location = /healthz {{\n        access_log off;\n        default_type text/plain;\n        return 200 \"ok\\n\";\n    }}\n\n{locations}}}\n"
    )
}

fn location(route: &Route) -> String {
    let Route {
        path,
        service,
        port,
    } = route;
    format!(
        "    location {path} {{\n        proxy_pass http://{service}:{port};\n        proxy_http_version 1.1;\n        proxy_set_header Host $host;\n        proxy_set_header X-Real-IP $remote_addr;\n        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n        proxy_set_header X-Forwarded-Proto $scheme;\n        proxy_read_timeout 300s;\n    }}\n\n"
    )
}
