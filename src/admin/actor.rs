//! Who acts in the console: an admin account's id, address and role. Accounts (which create and
//! find them), sessions (which carry one) and the audit log (which records one) all use it.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Reads every screen.
    Viewer,
    /// Also decides reviews, exports, deletes and switches APIs.
    Operator,
}

impl Role {
    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Viewer => "閲覧者",
            Role::Operator => "オペレーター",
        }
    }
}

#[derive(Clone, Debug)]
pub struct AdminUser {
    pub id: i64,
    pub email: String,
    pub role: Role,
}
