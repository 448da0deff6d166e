//! Themes: TOML files of semantic roles (`step.running`, `danger`, `rto.late`...), resolved once at start-up into
//! ratatui styles. Four presets are embedded in the binary; a user theme (`--theme PATH`) may `extends` one of them
//! and override some roles. Unknown keys and bad colours are errors with `file:line:col`.

use std::collections::BTreeMap;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// The presets, embedded: `--theme NAME` picks one; `monochrome` is chosen automatically under `NO_COLOR`.
pub const PRESETS: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("high-contrast", include_str!("../../themes/high-contrast.toml")),
    ("monochrome", include_str!("../../themes/monochrome.toml")),
];

/// Every semantic role a theme defines. A preset defines all of them.
pub const ROLES: &[&str] = &[
    "text",
    "muted",
    "title",
    "border",
    "border.focus",
    "selected",
    "key",
    "badge.sim",
    "badge.aws",
    "badge.readonly",
    "step.pending",
    "step.awaiting",
    "step.running",
    "step.succeeded",
    "step.failed",
    "step.skipped",
    "step.cancelled",
    "rto.ok",
    "rto.tight",
    "rto.late",
    "rpo.met",
    "rpo.missed",
    "danger",
    "warning",
    "progress",
    "search.match",
    "modal",
    "input",
    "timeline.projected",
    "timeline.critical",
    "timeline.now",
    "timeline.deadline",
    "region.down",
];

#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("cannot read theme {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}:{line}:{col}: {message}\n  {text}\n  {caret}")]
    Invalid { path: String, line: usize, col: usize, message: String, text: String, caret: String },
    #[error("unknown theme `{0}`: give a preset (dark, light, high-contrast, monochrome) or a path to a .toml file")]
    Unknown(String),
}

/// What `drconsole schema theme` describes: the very type the loader reads.
pub(crate) type ThemeSchema = ThemeFile;

/// A console theme (`themes/*.toml`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThemeFile {
    #[serde(default)]
    name: Option<String>,
    /// A preset to start from (user themes); presets themselves extend nothing.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    extends: Option<toml::Spanned<String>>,
    /// One style per semantic role (`step.running`, `rto.late`, …)
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, StyleSpec>")]
    roles: BTreeMap<toml::Spanned<String>, toml::Spanned<StyleSpec>>,
}

#[derive(Debug, Deserialize, Clone, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct StyleSpec {
    /// A colour: a name (`red`, `lightblue`), `#rrggbb` or an index 0-255
    #[schemars(with = "Option<String>")]
    fg: Option<toml::Spanned<String>>,
    #[schemars(with = "Option<String>")]
    bg: Option<toml::Spanned<String>>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    dim: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underline: bool,
    #[serde(default)]
    reverse: bool,
}

/// A resolved theme: one style per role.
#[derive(Debug, Clone)]
pub struct Theme {
    pub name: String,
    styles: BTreeMap<&'static str, Style>,
}

impl Theme {
    /// The style of a role (the default style for a role no theme defines, which tests forbid for presets).
    pub fn get(&self, role: &str) -> Style {
        self.styles.get(role).copied().unwrap_or_default()
    }

    /// A preset by name.
    pub fn preset(name: &str) -> Result<Theme, ThemeError> {
        let (n, text) = PRESETS.iter().find(|(n, _)| *n == name).ok_or_else(|| ThemeError::Unknown(name.into()))?;
        parse(text, &format!("<preset {n}>"), None)
    }

    /// The default: `monochrome` when `NO_COLOR` is set (and not empty), else `dark`.
    pub fn default_for_env() -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let name = if no_color { "monochrome" } else { "dark" };
        Theme::preset(name).unwrap_or_else(|_| Theme { name: name.into(), styles: BTreeMap::new() })
    }

    /// `--theme NAME|PATH`: a preset name, or a path to a TOML theme file.
    pub fn load(arg: &str) -> Result<Theme, ThemeError> {
        if PRESETS.iter().any(|(n, _)| *n == arg) {
            return Theme::preset(arg);
        }
        let looks_like_path = arg.contains('/') || arg.ends_with(".toml") || Path::new(arg).exists();
        if !looks_like_path {
            return Err(ThemeError::Unknown(arg.into()));
        }
        let text = std::fs::read_to_string(arg).map_err(|source| ThemeError::Read { path: arg.into(), source })?;
        let base = Theme::preset("dark")?;
        parse(&text, arg, Some(base))
    }
}

fn locate(text: &str, path: &str, span: std::ops::Range<usize>, message: String) -> ThemeError {
    let start = span.start.min(text.len());
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..start].chars().count() + 1;
    let line_text = text[line_start..].lines().next().unwrap_or("").to_string();
    let width = span.end.saturating_sub(span.start).clamp(1, line_text.len().saturating_sub(col - 1).max(1));
    let caret = format!("{}{}", " ".repeat(col - 1), "^".repeat(width));
    ThemeError::Invalid { path: path.into(), line, col, message, text: line_text, caret }
}

fn parse_color(text: &str, path: &str, c: &toml::Spanned<String>) -> Result<Color, ThemeError> {
    let s = c.get_ref().trim();
    s.parse::<Color>().map_err(|_| {
        locate(
            text,
            path,
            c.span(),
            format!("`{s}` is not a colour: use a name (red, light-blue, gray, reset), a number 0-255 or #rrggbb"),
        )
    })
}

/// Parses a theme file; `base` supplies the roles it does not define (and is replaced by `extends`).
fn parse(text: &str, path: &str, base: Option<Theme>) -> Result<Theme, ThemeError> {
    let file: ThemeFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        locate(text, path, span, e.message().to_string())
    })?;
    let mut theme = match &file.extends {
        Some(ext) => {
            if !PRESETS.iter().any(|(n, _)| *n == ext.get_ref()) {
                return Err(locate(
                    text,
                    path,
                    ext.span(),
                    format!(
                        "`extends = \"{}\"`: no such preset (dark, light, high-contrast, monochrome)",
                        ext.get_ref()
                    ),
                ));
            }
            Theme::preset(ext.get_ref())?
        }
        None => base.unwrap_or(Theme { name: String::new(), styles: BTreeMap::new() }),
    };
    theme.name = file.name.clone().unwrap_or_else(|| path.to_string());
    for (role, spec) in &file.roles {
        let Some(known) = ROLES.iter().find(|r| **r == role.get_ref()) else {
            let hint = crate::util::suggest(role.get_ref(), ROLES).map(|s| format!("; {s}")).unwrap_or_default();
            return Err(locate(text, path, role.span(), format!("unknown role `{}`{hint}", role.get_ref())));
        };
        let spec = spec.get_ref();
        let mut style = Style::default();
        if let Some(fg) = &spec.fg {
            style = style.fg(parse_color(text, path, fg)?);
        }
        if let Some(bg) = &spec.bg {
            style = style.bg(parse_color(text, path, bg)?);
        }
        let mut m = Modifier::empty();
        for (on, flag) in [
            (spec.bold, Modifier::BOLD),
            (spec.dim, Modifier::DIM),
            (spec.italic, Modifier::ITALIC),
            (spec.underline, Modifier::UNDERLINED),
            (spec.reverse, Modifier::REVERSED),
        ] {
            if on {
                m |= flag;
            }
        }
        theme.styles.insert(known, style.add_modifier(m));
    }
    Ok(theme)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_defines_every_role_and_nothing_else() {
        for (name, text) in PRESETS {
            let t = Theme::preset(name).unwrap();
            for role in ROLES {
                assert!(t.styles.contains_key(role), "preset {name} lacks role {role}");
            }
            // the file itself must name each role (not inherit it)
            for role in ROLES {
                assert!(
                    text.contains(&format!("\"{role}\"")) || text.contains(&format!("\n{role} =")),
                    "{name}: {role}"
                );
            }
        }
    }

    #[test]
    fn monochrome_has_no_colours_but_keeps_emphasis() {
        let t = Theme::preset("monochrome").unwrap();
        for role in ROLES {
            let s = t.get(role);
            assert!(s.fg.is_none() || s.fg == Some(Color::Reset), "{role} has fg {:?}", s.fg);
            assert!(s.bg.is_none() || s.bg == Some(Color::Reset), "{role} has bg {:?}", s.bg);
        }
        assert!(t.get("selected").add_modifier.contains(Modifier::REVERSED));
        assert!(t.get("step.failed").add_modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn unknown_role_is_located() {
        let text = "extends = \"dark\"\n[roles]\n\"step.runing\" = { fg = \"red\" }\n";
        let e = parse(text, "my.toml", None).unwrap_err().to_string();
        assert!(e.starts_with("my.toml:3:1: unknown role `step.runing`; did you mean `step.running`?"), "{e}");
    }

    #[test]
    fn unknown_key_is_located() {
        let text = "[roles]\ntext = { fg = \"red\", blink = true }\n";
        let e = parse(text, "t.toml", None).unwrap_err().to_string();
        assert!(e.starts_with("t.toml:2:"), "{e}");
        assert!(e.contains("blink"), "{e}");
    }

    #[test]
    fn bad_colour_is_located() {
        let text = "[roles]\ntext = { fg = \"redd\" }\n";
        let e = parse(text, "t.toml", None).unwrap_err().to_string();
        assert!(e.starts_with("t.toml:2:15: `redd` is not a colour"), "{e}");
    }

    #[test]
    fn user_theme_overrides_a_preset() {
        let text = "extends = \"light\"\n[roles]\ndanger = { fg = \"#ff0000\", bold = true }\n";
        let t = parse(text, "u.toml", None).unwrap();
        assert_eq!(t.get("danger").fg, Some(Color::Rgb(255, 0, 0)));
        assert_eq!(t.get("text"), Theme::preset("light").unwrap().get("text"));
    }

    #[test]
    fn unknown_name_is_an_error() {
        assert!(matches!(Theme::load("solarized"), Err(ThemeError::Unknown(_))));
        assert!(Theme::load("high-contrast").is_ok());
    }
}
