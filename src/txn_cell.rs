//! Backend state with the transaction semantics of a setting, for state no statement but
//! pg_tenant's own may change (a GUC can always be RESET without its check hook being asked).
//!
//! A [`TxCell`] holds a session value and the value in force. `set(v, local: false)` is a `SET`:
//! it lasts past the transaction if that commits. `set(v, local: true)` is a `SET LOCAL`: it ends
//! with the transaction. Either is undone by the rollback of its transaction or of the
//! subtransaction (savepoint) it was made in. The owner of the cell forwards the transaction
//! events ([`TxCell::on_xact`], [`TxCell::on_subxact`]).

/// One value with `SET`/`SET LOCAL` scoping and rollback (see the module documentation).
#[derive(Debug, Clone)]
pub struct TxCell<T: Clone> {
    /// The value committed for the session.
    session: T,
    /// The value in force.
    current: T,
    /// A session-level value set in this transaction (it becomes `session` at commit).
    pending: Option<T>,
    /// What to restore when a subtransaction rolls back: (its nest level, current, pending).
    saves: Vec<(i32, T, Option<T>)>,
}

impl<T: Clone> TxCell<Option<T>> {
    /// A cell holding None.
    pub const fn none() -> Self {
        TxCell {
            session: None,
            current: None,
            pending: None,
            saves: Vec::new(),
        }
    }
}

impl<T: Clone> TxCell<T> {
    pub fn get(&self) -> &T {
        &self.current
    }

    /// The value the session will have if the transaction commits now.
    pub fn after_commit(&self) -> &T {
        self.pending.as_ref().unwrap_or(&self.session)
    }

    /// Sets the value at transaction nest `level` (1 at top level), as `SET LOCAL` when `local`,
    /// else as `SET`.
    pub fn set(&mut self, value: T, local: bool, level: i32) {
        if level > 1 && self.saves.last().is_none_or(|(l, _, _)| *l < level) {
            self.saves
                .push((level, self.current.clone(), self.pending.clone()));
        }
        if !local {
            self.pending = Some(value.clone());
        }
        self.current = value;
    }

    /// The top-level transaction ended: committed (or prepared), or rolled back.
    pub fn on_xact(&mut self, committed: bool) {
        if committed {
            if let Some(v) = self.pending.take() {
                self.session = v;
            }
        }
        self.pending = None;
        self.saves.clear();
        self.current = self.session.clone();
    }

    /// The subtransaction at nest `level` ended: committed into its parent, or rolled back.
    pub fn on_subxact(&mut self, committed: bool, level: i32) {
        if committed {
            // Its saved state now belongs to the parent, unless the parent saved its own.
            let n = self.saves.len();
            if n > 0 && self.saves[n - 1].0 == level {
                let parent_saved = level - 1 <= 1 || n >= 2 && self.saves[n - 2].0 == level - 1;
                if parent_saved {
                    self.saves.pop();
                } else {
                    self.saves[n - 1].0 = level - 1;
                }
            }
            return;
        }
        let mut restored = None;
        while self.saves.last().is_some_and(|(l, _, _)| *l >= level) {
            restored = self.saves.pop();
        }
        if let Some((_, current, pending)) = restored {
            self.current = current;
            self.pending = pending;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TxCell;

    #[test]
    fn session_value_survives_commit_and_local_does_not() {
        let mut c = TxCell::none();
        c.set(Some(1), false, 1);
        c.on_xact(true);
        assert_eq!(*c.get(), Some(1));
        c.set(Some(2), true, 1);
        assert_eq!(*c.get(), Some(2));
        c.on_xact(true);
        assert_eq!(*c.get(), Some(1));
    }

    #[test]
    fn rollback_restores_the_session_value() {
        let mut c = TxCell::none();
        c.set(Some(1), false, 1);
        c.on_xact(true);
        c.set(Some(5), false, 1);
        c.on_xact(false);
        assert_eq!(*c.get(), Some(1));
    }

    #[test]
    fn savepoint_rollback_restores_what_was_there_at_the_savepoint() {
        let mut c = TxCell::none();
        c.set(Some(1), false, 1);
        c.set(Some(2), false, 2);
        c.set(Some(3), true, 3);
        c.on_subxact(false, 2);
        assert_eq!(*c.get(), Some(1));
        c.on_xact(true);
        assert_eq!(*c.get(), Some(1));
    }

    #[test]
    fn released_savepoint_keeps_its_change_until_the_parent_rolls_back() {
        let mut c = TxCell::none();
        c.set(Some(7), false, 1);
        c.on_xact(true);
        // BEGIN; SAVEPOINT a; SAVEPOINT b; SET 9; RELEASE b; ROLLBACK TO a
        c.set(Some(9), false, 3);
        c.on_subxact(true, 3);
        assert_eq!(*c.get(), Some(9));
        c.on_subxact(false, 2);
        assert_eq!(*c.get(), Some(7));
        // BEGIN; SAVEPOINT a; SET 4; RELEASE a; COMMIT
        c.set(Some(4), false, 2);
        c.on_subxact(true, 2);
        c.on_xact(true);
        assert_eq!(*c.get(), Some(4));
    }

    #[test]
    fn inner_savepoint_rollback_keeps_the_outer_change() {
        let mut c = TxCell::none();
        c.set(Some(1), false, 2);
        c.set(Some(2), false, 3);
        c.on_subxact(false, 3);
        assert_eq!(*c.get(), Some(1));
        c.on_subxact(true, 2);
        c.on_xact(true);
        assert_eq!(*c.get(), Some(1));
    }
}
