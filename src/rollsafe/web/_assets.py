"""The status page's inline CSS and script, and the Content-Security-Policy that allows
exactly them (the script by its hash): nothing is fetched from anywhere else.

The script only enhances: times in the viewer's zone (UTC stays in the title), the state
cells updated in place by polling ``/api/v1/summary`` every interval, and a pause button.
Without it the page refreshes itself (``<noscript>`` meta refresh) and says all it knows.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["CSP", "CSS", "INDICATOR_ICONS", "META_CSP", "SCRIPT", "STATE_ICONS"]

#: state -> (icon, css class); the icon is decorative (aria-hidden), the label says it
STATE_ICONS: dict[str, tuple[str, str]] = {
    "operational": ("\u2713", "s0"),  # check mark
    "degraded_performance": ("!", "s1"),
    "partial_outage": ("\u25d0", "s2"),  # half-filled circle
    "major_outage": ("\u2715", "s3"),  # multiplication x
}

#: the environment's indicator (Statuspage's) -> its icon, as the states' icons
INDICATOR_ICONS = {"none": "\u2713", "minor": "!", "major": "\u25d0", "critical": "\u2715"}

CSS = """
:root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--mu:#57606a;--ln:#d0d7de;--cd:#f3f4f6;
--a:#0550ae;--ok:#1a7f37;--dg:#9a6700;--po:#bc4c00;--mo:#cf222e;--nd:#afb8c1}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--mu:#9da7b3;--ln:#30363d;
--cd:#161b22;--a:#79c0ff;--ok:#3fb950;--dg:#d29922;--po:#f0883e;--mo:#f85149;--nd:#484f58}}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);
background:var(--bg);margin:0}
a{color:var(--a)}:focus-visible{outline:3px solid var(--a);outline-offset:2px}
.skip{position:absolute;left:-9999px;top:.5rem;background:var(--bg);padding:.4rem}
.skip:focus{left:.5rem;z-index:9}
header,main,footer{max-width:96rem;margin:0 auto;padding:.6rem 1rem}
header{display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;align-items:center;
border-bottom:1px solid var(--ln)}
header nav a{margin-right:.8rem}.site{font-weight:600;margin:0}
#indicator{margin:0;font-weight:600}#pause{font:inherit;padding:.15rem .6rem}
#stale{border:2px solid var(--dg);padding:.4rem .6rem;font-weight:600}
h1{font-size:1.5rem;margin:.6rem 0}h2{font-size:1.2rem;margin:1.4rem 0 .4rem;
border-bottom:1px solid var(--ln)}
.w{overflow-x:auto}table{border-collapse:collapse;width:100%}
caption{text-align:left;color:var(--mu);padding:.2rem 0}
th,td{border-bottom:1px solid var(--ln);padding:.25rem .45rem;text-align:left;
vertical-align:middle}thead th{background:var(--cd);white-space:nowrap}
td.n,#services td:nth-child(n+3):nth-child(-n+6){text-align:right;
font-variant-numeric:tabular-nums;white-space:nowrap}
code{background:var(--cd);padding:0 .2rem;border-radius:3px;word-break:break-word}
.mu,.meta{color:var(--mu)}
[data-state]{white-space:nowrap;font-weight:600}[data-state] i{font-style:normal;
display:inline-block;width:1.1em;text-align:center;border-radius:50%;color:#fff;margin-right:.2rem}
[data-state=operational] i{background:var(--ok)}
[data-state=degraded_performance] i{background:var(--dg)}
[data-state=partial_outage] i{background:var(--po)}[data-state=major_outage] i{background:var(--mo)}
#indicator i{font-style:normal;display:inline-block;width:1.1em;text-align:center;
border-radius:50%;color:#fff;margin-right:.25rem}[data-indicator=none] i{background:var(--ok)}
[data-indicator=minor] i{background:var(--dg)}[data-indicator=major] i{background:var(--po)}
[data-indicator=critical] i{background:var(--mo)}
svg.b{width:180px;height:18px;display:block}svg.k{width:92px;height:20px;display:block}
.o{fill:var(--ok)}.d{fill:var(--dg)}.p{fill:var(--po)}.m{fill:var(--mo)}.n{fill:var(--nd)}
.l{fill:none;stroke:var(--a);stroke-width:1.5;vector-effect:non-scaling-stroke}
.e{fill:var(--mo)}.g{stroke:var(--ln)}.x{fill:var(--mu);font-size:11px}
.dep{stroke:var(--ok);stroke-width:2}.rb{stroke:var(--mo);stroke-width:2;stroke-dasharray:4 3}
svg.c{width:100%;max-width:64rem;height:auto;display:block}
figure{margin:.4rem 0 1rem}#uptime{width:auto}#services td:nth-child(9){white-space:nowrap}
.tag{font-weight:600;text-transform:uppercase;font-size:.8rem;border:1px solid currentColor;
border-radius:3px;padding:0 .25rem}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
#report h1{font-size:1.5rem}#report table{margin:.5rem 0 1rem}
#report th,#report td{border:1px solid var(--ln);vertical-align:top}
""".strip().replace("\n", "")

SCRIPT = r"""
(function(){var d=document,b=d.body,iv=Math.max(1,+b.dataset.interval||30)*1e3,
off=/[?&]refresh=off(&|$)/.test(location.search),btn=d.getElementById('pause'),
live=d.getElementById('live'),n=0,t=null,
L={operational:['\u2713','Operational','s0'],degraded_performance:['!','Degraded performance','s1'],
partial_outage:['\u25d0','Partial outage','s2'],major_outage:['\u2715','Major outage','s3']},
I={none:'\u2713',minor:'!',major:'\u25d0',critical:'\u2715'},
F={year:'numeric',month:'short',day:'numeric',hour:'2-digit',minute:'2-digit'};
function loc(s){return new Date(s*1e3).toLocaleString([],F)}
function times(){d.querySelectorAll('time[datetime]').forEach(function(e){
var x=new Date(e.getAttribute('datetime'));if(isNaN(x))return;
if(!e.title)e.title=e.getAttribute('datetime').replace('T',' ').replace('Z',' UTC');
e.textContent=x.toLocaleString([],F)})}
function cell(c,s){var l=L[s];if(!l||c.dataset.state===s)return false;c.dataset.state=s;
c.innerHTML='<i aria-hidden="true">'+l[0]+'</i>'+l[1];return true}
function stale(j){var s=d.getElementById('stale');if(!j.stale){if(s)s.remove();return}
if(!s){s=d.createElement('p');s.id='stale';s.setAttribute('role','alert');
var m=d.getElementById('main');m.insertBefore(s,m.firstChild)}
s.textContent='The monitor has not written '+(j.last_write?'since '+loc(j.last_write):'yet')+
': data may be stale.'}
function apply(j){var m={},ch=[];j.services.forEach(function(s){m[s.name]=s.state});
d.querySelectorAll('[data-service]').forEach(function(r){var s=m[r.dataset.service],
c=r.querySelector('[data-state]');if(s&&c&&cell(c,s))ch.push(r.dataset.service+': '+L[s][1])});
var i=d.getElementById('indicator'),x=j.indicator.indicator;if(i&&i.dataset.indicator!==x){
i.dataset.indicator=x;i.innerHTML='<i aria-hidden="true">'+(I[x]||'?')+'</i>';
i.appendChild(d.createTextNode(j.indicator.description))}
stale(j.staleness);if(ch.length&&live)live.textContent=ch.join('; ')}
function poll(){t=null;fetch('/api/v1/summary',{cache:'no-store'}).then(function(r){
return r.json()}).then(function(j){apply(j);b.dataset.polled=++n}).catch(function(){})
.then(function(){if(!off)t=setTimeout(poll,iv)})}
function show(){btn.setAttribute('aria-pressed',off?'true':'false');
btn.textContent=off?'Resume auto-refresh':'Pause auto-refresh'}
if(btn){btn.hidden=false;show();btn.addEventListener('click',function(){off=!off;show();
if(t){clearTimeout(t);t=null}if(!off)poll()})}
times();if(!off)t=setTimeout(poll,iv)})();
""".strip().replace("\n", "")

_SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()

#: inline CSS, this one script, fetches to this origin only; no forms or plugins (the
#: ``<meta>`` copy in the page; a browser ignores frame-ancestors there)
META_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'"
)
#: the header: the same, and no page may frame this one
CSP = META_CSP + "; frame-ancestors 'none'"
