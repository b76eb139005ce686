//! Code that only runs in the browser (the `hydrate` feature): web APIs the server never sees.

pub mod live;
pub mod upload;

/// Brings the card of job `id` into view once it is drawn, when it is not already: on a phone
/// the list of jobs is below the form, and pressing Generate must show what it started.
pub fn reveal_job(id: &str) {
    let selector = format!("[data-testid=job][data-id=\"{id}\"]");
    leptos::prelude::request_animation_frame(move || {
        let Some(card) = leptos::prelude::document().query_selector(&selector).ok().flatten() else { return };
        let options = web_sys::ScrollIntoViewOptions::new();
        options.set_block(web_sys::ScrollLogicalPosition::Nearest);
        options.set_behavior(web_sys::ScrollBehavior::Smooth);
        card.scroll_into_view_with_scroll_into_view_options(&options);
    });
}

/// Whether the page is scrolled to within `margin` pixels of its end.
pub fn near_bottom(margin: f64) -> bool {
    let window = leptos::prelude::window();
    let height = window.inner_height().ok().and_then(|h| h.as_f64()).unwrap_or(0.0);
    let scrolled = window.scroll_y().unwrap_or(0.0);
    let total = leptos::prelude::document().document_element().map_or(0.0, |e| f64::from(e.scroll_height()));
    scrolled + height + margin >= total
}

/// How the gallery grid `grid` is laid out now: its columns and row gap as the browser resolved
/// them, a tile's height and where the grid sits relative to the viewport. `None` before a tile
/// is drawn.
pub fn measure_grid(grid: &web_sys::Element) -> Option<crate::gallery::GridGeometry> {
    let window = leptos::prelude::window();
    let style = window.get_computed_style(grid).ok().flatten()?;
    let columns = style.get_property_value("grid-template-columns").ok()?.split_whitespace().count();
    let px = |value: String| value.trim().trim_end_matches("px").parse::<f64>().ok();
    let gap = style.get_property_value("row-gap").ok().and_then(px).unwrap_or(0.0);
    let tile = grid.query_selector("[data-testid=gallery-tile]").ok().flatten()?.get_bounding_client_rect().height();
    Some(crate::gallery::GridGeometry {
        columns,
        tile,
        gap,
        top: grid.get_bounding_client_rect().top(),
        viewport: window.inner_height().ok()?.as_f64()?,
    })
}
