//! Tables and colours for people; JSON for scripts.

use std::io::IsTerminal;

use serde::Serialize;

/// Prints `value` as pretty JSON.
pub(crate) fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

/// A simple left-aligned table with a header.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!(
        "{}",
        bold(&line(header.iter().map(|h| h.to_string()).collect()))
    );
    for row in rows {
        println!("{}", line(row.clone()));
    }
}

fn styled(text: &str, code: &str) -> String {
    if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Bold on a terminal.
pub(crate) fn bold(text: &str) -> String {
    styled(text, "1")
}

/// Yellow on a terminal (warnings such as `simulated`).
pub(crate) fn warn(text: &str) -> String {
    styled(text, "33")
}

/// The first 8 characters of an id, as people read them.
pub(crate) fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// An offer's short name, as `qubix offers` shows it and `--offer` takes it: the first 8
/// characters of its id and the last 6 of its provider's (provider ids all begin alike).
pub(crate) fn short_offer(id: &qubix_protocol::OfferRef) -> String {
    let offer: String = id.offer_id.to_string().chars().take(8).collect();
    match id.provider {
        Some(p) => {
            let p = p.to_string();
            format!("{offer}@{}", &p[p.len().saturating_sub(6)..])
        }
        None => offer,
    }
}
