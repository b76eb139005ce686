//! What the user's jobs have spent (estimated from fal's prices) and the caps they set
//! themselves, below whatever an admin or the server set.

use leptos::prelude::*;

use crate::api::spending::{SetOwnCaps, SpendingView, spending};
use crate::components::{FieldHint, Notice, NoticeBanner, action_field_error};
use crate::format::{timestamp, usd, usd_exact};
use crate::messages::{Locale, t, tf, use_locale};

fn of_cap(l: Locale, spent: i64, cap: Option<i64>) -> String {
    match cap {
        Some(cap) => tf(l, "spending.of_cap", &[("spent", &usd(spent)), ("cap", &usd(cap))]),
        None => tf(l, "spending.no_cap", &[("spent", &usd(spent))]),
    }
}

#[component]
pub fn SpendingCard() -> impl IntoView {
    let set = ServerAction::<SetOwnCaps>::new();
    let current = Resource::new(move || set.version().get(), |_| spending());
    let l = use_locale();
    let notice = Signal::derive(move || match set.value().get() {
        Some(Ok(_)) => Some(Notice::Success(t(l, "spending.saved").into())),
        Some(Err(e)) if e.field.is_some() => None,
        Some(Err(e)) => Some(Notice::from(&e)),
        None => None,
    });
    let error = move |field: &'static str| action_field_error(set.value(), field);
    view! {
        <section class="card" aria-labelledby="spending-heading">
            <h2 id="spending-heading">{t(l, "spending.heading")}</h2>
            <p class="muted">{t(l, "spending.intro")}</p>
            <NoticeBanner notice />
            <Transition fallback=move || view! { <p class="muted">{t(l, "common.loading")}</p> }>
                {move || Suspend::new(async move {
                    let view_of = match current.await {
                        Ok(v) => v,
                        Err(e) => return view! { <p class="banner error">{e.message}</p> }.into_any(),
                    };
                    let SpendingView { spent_day, spent_month, cap_day, cap_month, own_day, own_month, day_resets_at, month_resets_at, .. } = view_of;
                    view! {
                        <dl class="spending" data-testid="spending">
                            <dt>{t(l, "spending.today")}</dt>
                            <dd data-testid="spent-day">{of_cap(l, spent_day, cap_day)} <span class="muted small">" · " {t(l, "spending.resets")} " " {timestamp(&day_resets_at)}</span></dd>
                            <dt>{t(l, "spending.this_month")}</dt>
                            <dd data-testid="spent-month">{of_cap(l, spent_month, cap_month)} <span class="muted small">" · " {t(l, "spending.resets")} " " {timestamp(&month_resets_at)}</span></dd>
                        </dl>
                        <ActionForm action=set attr:class="stack narrow">
                            <label for="own-day">{t(l, "spending.my_daily")}</label>
                            <input id="own-day" name="day" inputmode="decimal" placeholder=t(l, "spending.none") aria-describedby="own-day-hint"
                                value=own_day.map(usd_exact).unwrap_or_default() />
                            <FieldHint id="own-day-hint" hint=Signal::derive(|| None::<String>) server=error("day") />
                            <label for="own-month">{t(l, "spending.my_monthly")}</label>
                            <input id="own-month" name="month" inputmode="decimal" placeholder=t(l, "spending.none") aria-describedby="own-month-hint"
                                value=own_month.map(usd_exact).unwrap_or_default() />
                            <FieldHint id="own-month-hint" hint=Signal::derive(|| None::<String>) server=error("month") />
                            <button type="submit" class="primary" disabled=move || set.pending().get()>{t(l, "spending.save")}</button>
                        </ActionForm>
                    }
                    .into_any()
                })}
            </Transition>
        </section>
    }
}
