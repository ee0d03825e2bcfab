//! The frame of every signed-in page: the navigation, who is signed in and the sign-out form.

use super::actor::Role;
use super::session::AdminSession;

/// Which part of the console a page belongs to, for the navigation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Section {
    Dashboard,
    Reviews,
    Registrations,
    Switches,
    Audit,
}

/// What every signed-in page's frame shows: the navigation, who is signed in, the sign-out form.
pub struct Layout {
    pub email: String,
    pub role_label: &'static str,
    pub is_operator: bool,
    pub csrf_token: String,
    pub section: Section,
    /// The writer is down: a banner says so and no action is offered.
    pub read_only: bool,
}

impl Layout {
    pub fn new(session: &AdminSession, section: Section) -> Layout {
        Layout {
            email: session.user.email.clone(),
            role_label: session.user.role.label(),
            is_operator: session.user.role == Role::Operator && !session.read_only,
            csrf_token: session.csrf_token.clone(),
            section,
            read_only: session.read_only,
        }
    }

    pub fn nav(&self) -> Vec<(&'static str, &'static str, bool)> {
        [
            ("/admin", "ダッシュボード", Section::Dashboard),
            ("/admin/reviews", "確認待ち", Section::Reviews),
            ("/admin/registrations", "登録一覧", Section::Registrations),
            ("/admin/switches", "外部API切替", Section::Switches),
            ("/admin/audit", "監査ログ", Section::Audit),
        ]
        .into_iter()
        .map(|(href, label, section)| (href, label, section == self.section))
        .collect()
    }
}
