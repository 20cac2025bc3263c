//! Column helpers shared by the migrations of all three databases, so one migration produces
//! equivalent schemas on SQLite, PostgreSQL and MariaDB/MySQL.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema;

/// A UTC timestamp column, NOT NULL. PostgreSQL `timestamptz`, SQLite text, and on MySQL
/// `DATETIME(6)` rather than `TIMESTAMP` (which ends in 2038 and drops sub-seconds).
pub(crate) fn ts<T: IntoIden>(backend: DbBackend, col: T) -> ColumnDef {
    let mut def = ts_null(backend, col);
    def.not_null();
    def
}

/// A nullable UTC timestamp column (see [`ts`]).
pub(crate) fn ts_null<T: IntoIden>(backend: DbBackend, col: T) -> ColumnDef {
    match backend {
        DbBackend::MySql => {
            let mut def = ColumnDef::new(col);
            def.custom(Alias::new("DATETIME(6)")).null();
            def
        }
        _ => schema::timestamp_with_time_zone_null(col),
    }
}

/// A foreign key from `from_table.from_col` to `to_table.id`, deleting children with the parent.
pub(crate) fn fk_cascade(
    from_table: &'static str,
    from_col: &'static str,
    to_table: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from_table}_{from_col}"))
        .from(Alias::new(from_table), Alias::new(from_col))
        .to(Alias::new(to_table), Alias::new("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

/// A foreign key that sets the child column to NULL when the parent goes.
pub(crate) fn fk_set_null(
    from_table: &'static str,
    from_col: &'static str,
    to_table: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from_table}_{from_col}"))
        .from(Alias::new(from_table), Alias::new(from_col))
        .to(Alias::new(to_table), Alias::new("id"))
        .on_delete(ForeignKeyAction::SetNull)
        .to_owned()
}

/// A (possibly unique) index over `cols` of `table`, named `idx_TABLE_COL1_COL2`.
pub(crate) fn index(
    table: &'static str,
    cols: &[&'static str],
    unique: bool,
) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(format!("idx_{table}_{}", cols.join("_"))).table(Alias::new(table));
    for c in cols {
        stmt.col(Alias::new(*c));
    }
    if unique {
        stmt.unique();
    }
    stmt.to_owned()
}

/// A bare column name.
pub(crate) fn c(name: &'static str) -> Alias {
    Alias::new(name)
}

/// Add one column to `table` (SQLite alters one column per statement).
pub(crate) async fn add(
    m: &SchemaManager<'_>,
    table: &'static str,
    col: ColumnDef,
) -> Result<(), DbErr> {
    let mut col = col;
    m.alter_table(Table::alter().table(c(table)).add_column(&mut col).to_owned()).await
}

/// Drop one column of `table`.
pub(crate) async fn drop_col(
    m: &SchemaManager<'_>,
    table: &'static str,
    col: &'static str,
) -> Result<(), DbErr> {
    m.alter_table(Table::alter().table(c(table)).drop_column(c(col)).to_owned()).await
}
