//! Pages for people: the server index, the Data Request Form (`.html`),
//! the dataset summary (`.info`) and help. Everything user- or
//! data-supplied is HTML-escaped.

use crate::archive::ServedDataset;
use crate::catalogue::Dataset;
use crate::dap::view::ViewVar;

pub use crate::markup::escape;

fn page(title: &str, body: &str) -> String {
    super::web::pages::raw(title, body)
}

/// The server's front page: every dataset with its links.
pub fn index(datasets: &[Dataset]) -> String {
    let mut rows = String::new();
    for d in datasets {
        let n = escape(d.def.name.as_str());
        rows.push_str(&format!(
            "<tr><td><a href=\"/dap/{n}.html\">{n}</a></td><td>{}</td><td>{} x {}</td><td>{}</td><td><a href=\"/dap/{n}.dds\">dds</a> <a href=\"/dap/{n}.das\">das</a> <a href=\"/dap/{n}.info\">info</a></td></tr>\n",
            escape(&d.def.title),
            d.def.grid.nx(),
            d.def.grid.ny(),
            d.stats.slice_count
        ));
    }
    page(
        "tessera datasets",
        &format!(
            "<h1>tessera</h1><p>OPeNDAP (DAP2) datasets. Point any DAP client at <code>/dap/&lt;dataset&gt;</code>.</p>\
             <table><tr><th>dataset</th><th>title</th><th>grid</th><th>time slices</th><th></th></tr>\n{rows}</table>"
        ),
    )
}

/// The Data Request Form: pick variables and hyperslabs, get a URL.
pub fn form(dv: &ServedDataset) -> String {
    let name = escape(dv.dataset.def.name.as_str());
    let mut vars = String::new();
    for v in dv.structure.vars() {
        let (vname, dims) = match v {
            ViewVar::Array(a) => (a.name.clone(), a.dims.clone()),
            ViewVar::Grid(g) => (g.name().to_string(), g.array().dims.clone()),
        };
        let n = escape(&vname);
        let mut slabs = String::new();
        for d in &dims {
            slabs.push_str(&format!(
                "<label>{dn} <input type=\"text\" data-var=\"{n}\" value=\"0:1:{last}\" title=\"start:stride:stop\"></label> ",
                dn = escape(&d.name),
                last = d.len.saturating_sub(1)
            ));
        }
        vars.push_str(&format!(
            "<tr><td><label><input type=\"checkbox\" name=\"var\" value=\"{n}\"> <b>{n}</b></label></td><td>{slabs}</td></tr>\n"
        ));
    }
    let script = r#"<script>
function ce(){const parts=[];for(const box of document.querySelectorAll('input[name=var]:checked')){
 const slabs=[...document.querySelectorAll('input[data-var="'+box.value+'"]')].map(i=>'['+i.value.trim()+']').join('');
 parts.push(box.value+slabs);}return parts.join(',');}
function update(){const fmt=document.getElementById('fmt').value;const url=location.href.replace(/\.html(\?.*)?$/,'.'+fmt)+(ce()?'?'+ce():'');
 const a=document.getElementById('url');a.textContent=url;a.href=url;}
document.addEventListener('input',update);document.addEventListener('change',update);window.addEventListener('load',update);
</script>"#;
    page(
        &format!("{} — Data Request Form", dv.dataset.def.name),
        &format!(
            "<h1>{name}</h1><p>{}</p><h2>Data Request Form</h2>\
             <p>Tick variables, edit hyperslabs (<code>start:stride:stop</code>, inclusive, 0-based), then follow the link.</p>\
             <table>{vars}</table><p>Format: <select id=\"fmt\"><option>ascii</option><option>dods</option><option>dds</option></select></p>\
             <p>Data URL: <a id=\"url\" href=\"#\"></a></p>\
             <h2>Dataset Descriptor Structure</h2><pre>{}</pre><h2>Attributes</h2><pre>{}</pre>{script}",
            escape(&dv.dataset.def.title),
            escape(&dv.dds),
            escape(&dv.das)
        ),
    )
}

/// A summary for people: title, extent, variables, DDS and DAS.
pub fn info(dv: &ServedDataset) -> String {
    let d = &dv.dataset;
    let g = &d.def.grid;
    let extent = match (d.stats.t_min, d.stats.t_max) {
        (Some(a), Some(b)) => format!("{a} .. {b} ({} slices)", d.stats.slice_count),
        _ => "no time slices".into(),
    };
    page(
        &format!("{} — info", d.def.name),
        &format!(
            "<h1>{}</h1><p>{}</p><table>\
             <tr><th>grid</th><td>{} x {} ({} x {})</td></tr><tr><th>CRS</th><td>{}</td></tr>\
             <tr><th>time</th><td>{}</td></tr><tr><th>tiles</th><td>{} ({}), {} stored</td></tr></table>\
             <h2>DDS</h2><pre>{}</pre><h2>DAS</h2><pre>{}</pre>",
            escape(d.def.name.as_str()),
            escape(&d.def.title),
            g.nx(),
            g.ny(),
            escape(&g.x.name),
            escape(&g.y.name),
            escape(&g.crs.describe()),
            escape(&extent),
            d.def.tile,
            d.def.format,
            d.stats.tile_count,
            escape(&dv.dds),
            escape(&dv.das)
        ),
    )
}

pub const HELP: &str = "tessera: OPeNDAP DAP2 server

Dataset URL: /dap/<dataset>
Responses (append to the dataset URL):
  .dds     Dataset Descriptor Structure (constrained by ?<ce>)
  .das     Dataset Attribute Structure
  .dods    data: constrained DDS, then XDR (constrained by ?<ce>)
  .ascii   data as comma-separated text (also .asc)
  .html    Data Request Form
  .info    summary for people
  .ver     server version
Constraint expressions: ?var[start:stride:stop][...],other_var
  e.g. /dap/sst.dods?sst[0][0:10:599][0:10:799]
  coordinate values: ?sst[(2010-01-15)][(40.0):(30.0)][(100):(120)]
Server: /version, /help, / (dataset index)
";
