//! Grafana's dashboard JSON model (schema version 39, Grafana 11), as far as berth's
//! dashboards use it, and the layout that places their panels. Pure; fields in
//! Grafana's own order, panel ids and positions given by the order panels are added.

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Grafana's dashboard grid is 24 columns wide.
const GRID_WIDTH: u32 = 24;
/// Grafana refuses a dashboard uid longer than this.
const MAX_UID: usize = 40;

/// The datasource every berth panel reads: the one `grafana.rs` provisions with this uid.
pub const PROMETHEUS_UID: &str = "prometheus";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    uid: String,
    title: String,
    description: String,
    tags: Vec<String>,
    timezone: &'static str,
    schema_version: u32,
    version: u32,
    editable: bool,
    graph_tooltip: u32,
    refresh: &'static str,
    time: TimeRange,
    templating: List,
    annotations: List,
    panels: Vec<Panel>,
    /// Where the next panel goes: the row's top, the next free column, the row's height.
    #[serde(skip)]
    cursor: (u32, u32, u32),
}

#[derive(Serialize)]
struct TimeRange {
    from: &'static str,
    to: &'static str,
}

#[derive(Serialize)]
struct List {
    list: Vec<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Panel {
    id: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    title: String,
    description: String,
    grid_pos: GridPos,
    datasource: DatasourceRef,
    targets: Vec<Target>,
    field_config: FieldConfig,
    options: Value,
}

#[derive(Serialize, Clone, Copy)]
struct GridPos {
    h: u32,
    w: u32,
    x: u32,
    y: u32,
}

#[derive(Serialize, Clone)]
struct DatasourceRef {
    #[serde(rename = "type")]
    kind: &'static str,
    uid: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    ref_id: String,
    datasource: DatasourceRef,
    expr: String,
    legend_format: String,
    instant: bool,
    range: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
}

#[derive(Serialize)]
struct FieldConfig {
    defaults: Value,
    overrides: Vec<Value>,
}

/// The kinds of panel berth draws.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One value per series, coloured by thresholds or mappings.
    Stat,
    /// Series over time.
    TimeSeries,
    /// The series' labels as rows (e.g. the firing alerts).
    Table,
}

impl Dashboard {
    /// An empty dashboard; `slug` makes its uid with the stack's name.
    pub fn new(stack: &str, slug: &str, title: &str, description: &str) -> Self {
        Dashboard {
            uid: uid(stack, slug),
            title: format!("{stack} · {title}"),
            description: description.to_string(),
            tags: vec!["berth".to_string(), stack.to_string()],
            timezone: "browser",
            schema_version: 39,
            version: 1,
            editable: false,
            // A shared crosshair: an outage lines up across panels.
            graph_tooltip: 1,
            refresh: "30s",
            time: TimeRange {
                from: "now-6h",
                to: "now",
            },
            templating: List { list: Vec::new() },
            annotations: List { list: Vec::new() },
            panels: Vec::new(),
            cursor: (0, 0, 0),
        }
    }

    /// Adds `panel` `width` columns wide and `height` rows high, after the previous one,
    /// on the next row when this one is full.
    pub fn add(&mut self, width: u32, height: u32, panel: PanelSpec) {
        let (mut top, mut column, mut row_height) = self.cursor;
        if column + width > GRID_WIDTH {
            top += row_height;
            column = 0;
            row_height = 0;
        }
        let grid_pos = GridPos {
            h: height,
            w: width,
            x: column,
            y: top,
        };
        self.cursor = (top, column + width, row_height.max(height));
        let id = u32::try_from(self.panels.len()).map_or(u32::MAX, |n| n + 1);
        self.panels.push(panel.into_panel(id, grid_pos));
    }

    /// The file name of this dashboard under the provisioned folder.
    pub fn file_name(&self) -> String {
        format!("{}.json", self.uid)
    }

    /// The dashboard as Grafana reads it, pretty-printed with a final line feed.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail; an empty object would show it.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_string());
        text.push('\n');
        text
    }
}

/// A panel before it has its place: what it shows and how.
pub struct PanelSpec {
    kind: Kind,
    title: String,
    description: String,
    targets: Vec<(String, String)>,
    unit: &'static str,
    defaults: Value,
}

impl PanelSpec {
    pub fn new(kind: Kind, title: &str, description: &str) -> Self {
        PanelSpec {
            kind,
            title: title.to_string(),
            description: description.to_string(),
            targets: Vec::new(),
            unit: "short",
            defaults: json!({}),
        }
    }

    /// Adds a query: a PromQL expression and the legend of its series.
    pub fn query(mut self, expr: &str, legend: &str) -> Self {
        self.targets.push((expr.to_string(), legend.to_string()));
        self
    }

    /// Grafana's unit of the values (`s`, `bytes`, `percentunit`, `reqps`…).
    pub fn unit(mut self, unit: &'static str) -> Self {
        self.unit = unit;
        self
    }

    /// 0 reads "down" in red and 1 "up" in green.
    pub fn up_down(mut self) -> Self {
        self.defaults["mappings"] = json!([{
            "type": "value",
            "options": {
                "0": { "text": "down", "color": "red", "index": 0 },
                "1": { "text": "up", "color": "green", "index": 1 },
            },
        }]);
        self.defaults["thresholds"] = thresholds("red", &[(1.0, "green")]);
        self
    }

    /// Green below `warning`, orange from it, red from `critical`.
    pub fn warn_at(mut self, warning: f64, critical: f64) -> Self {
        self.defaults["thresholds"] =
            thresholds("green", &[(warning, "orange"), (critical, "red")]);
        self
    }

    /// Values from 0 to `max` (a ratio's 1).
    pub fn range(mut self, max: f64) -> Self {
        self.defaults["min"] = json!(0);
        self.defaults["max"] = json!(max);
        self
    }

    fn into_panel(self, id: u32, grid_pos: GridPos) -> Panel {
        let datasource = DatasourceRef {
            kind: "prometheus",
            uid: PROMETHEUS_UID,
        };
        let instant = self.kind != Kind::TimeSeries;
        let targets = self
            .targets
            .into_iter()
            .zip(b'A'..=b'Z')
            .map(|((expr, legend), letter)| Target {
                ref_id: char::from(letter).to_string(),
                datasource: datasource.clone(),
                expr,
                legend_format: legend,
                instant,
                range: !instant,
                format: (self.kind == Kind::Table).then_some("table"),
            })
            .collect();
        let mut defaults = self.defaults;
        defaults["unit"] = json!(self.unit);
        if defaults.get("thresholds").is_none() {
            defaults["thresholds"] = thresholds("green", &[]);
        }
        let (kind, options) = match self.kind {
            Kind::Stat => ("stat", stat_options()),
            Kind::TimeSeries => ("timeseries", time_series_options()),
            Kind::Table => ("table", json!({ "showHeader": true, "cellHeight": "sm" })),
        };
        Panel {
            id,
            kind,
            title: self.title,
            description: self.description,
            grid_pos,
            datasource,
            targets,
            field_config: FieldConfig {
                defaults,
                overrides: Vec::new(),
            },
            options,
        }
    }
}

fn thresholds(base: &str, steps: &[(f64, &str)]) -> Value {
    let mut list = vec![json!({ "color": base, "value": null })];
    list.extend(
        steps
            .iter()
            .map(|(value, color)| json!({ "color": color, "value": value })),
    );
    json!({ "mode": "absolute", "steps": list })
}

fn stat_options() -> Value {
    json!({
        "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
        "orientation": "auto",
        "textMode": "value_and_name",
        "colorMode": "background",
        "graphMode": "none",
        "justifyMode": "auto",
    })
}

fn time_series_options() -> Value {
    json!({
        "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true },
        "tooltip": { "mode": "multi", "sort": "desc" },
    })
}

/// `<stack>-<slug>`, cut to Grafana's 40 characters with a digest of the whole when longer,
/// so two long names stay two uids.
fn uid(stack: &str, slug: &str) -> String {
    let full = format!("{stack}-{slug}");
    if full.len() <= MAX_UID {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let suffix: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let keep = full
        .char_indices()
        .map(|(i, _)| i)
        .take_while(|i| *i < MAX_UID - suffix.len())
        .last()
        .unwrap_or(0);
    format!("{}-{suffix}", &full[..keep])
}
