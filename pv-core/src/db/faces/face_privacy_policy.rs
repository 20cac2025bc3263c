//! `face_privacy_policies`: an identity's privacy choices: opt-out of tagging, retention of
//! samples, and deletion on request.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "face_privacy_policies")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub identity_id: i64,
    /// Do not tag this person in overlays or events.
    pub opt_out_tagging: bool,
    /// Delete samples older than this many days (None: keep while enrolled).
    pub retain_days: Option<i32>,
    /// When the person asked for deletion of their biometric data.
    pub deletion_requested_at: Option<DateTimeUtc>,
    /// When that deletion was carried out.
    pub deleted_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::face_identity::Entity",
        from = "Column::IdentityId",
        to = "super::face_identity::Column::Id",
        on_delete = "Cascade"
    )]
    FaceIdentity,
}

impl Related<super::face_identity::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::FaceIdentity.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::face_identity::Entity")]
    FaceIdentity,
}

impl ActiveModelBehavior for ActiveModel {}
