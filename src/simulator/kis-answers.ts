/**
 * The bodies of KIS's business answers, with every field the real answer carries. Clients read these fields by
 * name and fail on a missing one (python-kis turns `output` into an object field by field and raises on a missing
 * `acml_tr_pbmn`; the official samples build a DataFrame of every column), so a stand-in that answers only the
 * fields a sidecar reads refuses the very clients it should serve.
 *
 * Field names: the official samples' column lists (koreainvestment/open-trading-api,
 * `examples_llm/domestic_stock/inquire_price/chk_inquire_price.py`, `.../inquire_balance/chk_inquire_balance.py`,
 * `.../order_cash/chk_order_cash.py`). Values: simulator choices, a plausible Samsung Electronics (005930) day, all
 * strings as KIS sends them; dates as YYYYMMDD, the form python-kis parses.
 */

/** inquire-price (FHKST01010100) `output`: the 82 fields of the official sample, in its order. */
const PRICE_OUTPUT: Readonly<Record<string, string>> = {
  iscd_stat_cls_code: '55',
  marg_rate: '20.00',
  rprs_mrkt_kor_name: 'KOSPI200',
  new_hgpr_lwpr_cls_code: '',
  bstp_kor_isnm: '전기.전자',
  temp_stop_yn: 'N',
  oprc_rang_cont_yn: 'N',
  clpr_rang_cont_yn: 'N',
  crdt_able_yn: 'Y',
  grmn_rate_cls_code: '40',
  elw_pblc_yn: 'Y',
  stck_prpr: '71000',
  prdy_vrss: '500',
  prdy_vrss_sign: '2',
  prdy_ctrt: '0.71',
  acml_tr_pbmn: '876543210000',
  acml_vol: '12345678',
  prdy_vrss_vol_rate: '95.32',
  stck_oprc: '70600',
  stck_hgpr: '71300',
  stck_lwpr: '70400',
  stck_mxpr: '91700',
  stck_llam: '49400',
  stck_sdpr: '70500',
  wghn_avrg_stck_prc: '70912.45',
  hts_frgn_ehrt: '55.21',
  frgn_ntby_qty: '-123456',
  pgtr_ntby_qty: '234567',
  pvt_scnd_dmrs_prc: '72300',
  pvt_frst_dmrs_prc: '71700',
  pvt_pont_val: '70900',
  pvt_frst_dmsp_prc: '70300',
  pvt_scnd_dmsp_prc: '69500',
  dmrs_val: '71300',
  dmsp_val: '70100',
  cpfn: '7780',
  rstc_wdth_prc: '21150',
  stck_fcam: '100',
  stck_sspr: '56400',
  aspr_unit: '100',
  hts_deal_qty_unit_val: '1',
  lstn_stcn: '5969782550',
  hts_avls: '4238546',
  per: '13.52',
  pbr: '1.34',
  stac_month: '12',
  vol_tnrt: '0.21',
  eps: '5251.00',
  bps: '52936.00',
  d250_hgpr: '88800',
  d250_hgpr_date: '20250710',
  d250_hgpr_vrss_prpr_rate: '-20.05',
  d250_lwpr: '49900',
  d250_lwpr_date: '20251114',
  d250_lwpr_vrss_prpr_rate: '42.28',
  stck_dryy_hgpr: '74200',
  dryy_hgpr_vrss_prpr_rate: '-4.31',
  dryy_hgpr_date: '20260105',
  stck_dryy_lwpr: '68100',
  dryy_lwpr_vrss_prpr_rate: '4.26',
  dryy_lwpr_date: '20260112',
  w52_hgpr: '88800',
  w52_hgpr_vrss_prpr_ctrt: '-20.05',
  w52_hgpr_date: '20250710',
  w52_lwpr: '49900',
  w52_lwpr_vrss_prpr_ctrt: '42.28',
  w52_lwpr_date: '20251114',
  whol_loan_rmnd_rate: '0.12',
  ssts_yn: 'Y',
  stck_shrn_iscd: '005930',
  fcam_cnnm: '100',
  cpfn_cnnm: '7,780 억',
  apprch_rate: '0.00',
  frgn_hldn_qty: '3296171092',
  vi_cls_code: 'N',
  ovtm_vi_cls_code: 'N',
  last_ssts_cntg_qty: '43875',
  invt_caful_yn: 'N',
  mrkt_warn_cls_code: '00',
  short_over_yn: 'N',
  sltr_yn: 'N',
  mang_issu_cls_code: 'N',
};

const OK = { rt_cd: '0', msg_cd: 'MCA00000', msg1: '정상처리 되었습니다.' } as const;

/**
 * The price answer for a stock code. The simulator quotes one made-up day for every code, under the code asked
 * for: python-kis checks `stck_shrn_iscd` against nothing, but a client printing it should see its own code.
 */
export function kisPriceBody(code: string): Record<string, unknown> {
  return { output: { ...PRICE_OUTPUT, stck_shrn_iscd: code }, ...OK };
}

/** inquire-balance (TTTC8434R) `output1`: one holding per row, the 26 fields of the official sample. */
const HOLDING: Readonly<Record<string, string>> = {
  pdno: '005930',
  prdt_name: '삼성전자',
  trad_dvsn_name: '현금',
  bfdy_buy_qty: '0',
  bfdy_sll_qty: '0',
  thdt_buyqty: '0',
  thdt_sll_qty: '0',
  hldg_qty: '10',
  ord_psbl_qty: '10',
  pchs_avg_pric: '68500.0000',
  pchs_amt: '685000',
  prpr: '71000',
  evlu_amt: '710000',
  evlu_pfls_amt: '25000',
  evlu_pfls_rt: '3.65',
  evlu_erng_rt: '3.64963504',
  loan_dt: '',
  loan_amt: '0',
  stln_slng_chgs: '0',
  expd_dt: '',
  fltt_rt: '0.71000000',
  bfdy_cprs_icdc: '500',
  item_mgna_rt_name: '20%',
  grta_rt_name: '',
  sbst_pric: '56400',
  stck_loan_unpr: '0.0000',
};

/** inquire-balance `output2`: the account's totals, one row, the 24 fields of the official sample. */
const TOTALS: Readonly<Record<string, string>> = {
  dnca_tot_amt: '1000000',
  nxdy_excc_amt: '1000000',
  prvs_rcdl_excc_amt: '1000000',
  cma_evlu_amt: '0',
  bfdy_buy_amt: '0',
  thdt_buy_amt: '0',
  nxdy_auto_rdpt_amt: '0',
  bfdy_sll_amt: '0',
  thdt_sll_amt: '0',
  d2_auto_rdpt_amt: '0',
  bfdy_tlex_amt: '0',
  thdt_tlex_amt: '0',
  tot_loan_amt: '0',
  scts_evlu_amt: '710000',
  tot_evlu_amt: '1710000',
  nass_amt: '1710000',
  fncg_gld_auto_rdpt_yn: '',
  pchs_amt_smtl_amt: '685000',
  evlu_amt_smtl_amt: '710000',
  evlu_pfls_smtl_amt: '25000',
  tot_stln_slng_chgs: '0',
  bfdy_tot_asst_evlu_amt: '1705000',
  asst_icdc_amt: '5000',
  asst_icdc_erng_rt: '0.29325513',
};

/**
 * The balance answer: one page holding everything (the continuation keys empty, and `tr_cont: D` in the headers,
 * which the official sample reads to decide whether to ask for the next page).
 */
export function kisBalanceBody(): Record<string, unknown> {
  return { ctx_area_fk100: '', ctx_area_nk100: '', output1: [{ ...HOLDING }], output2: [{ ...TOTALS }], ...OK };
}

/** order-cash (TTTC0012U) success: the 3 fields of the official sample (KRX_FWDG_ORD_ORGNO is the branch, a constant here). */
export function kisOrderBody(orderNumber: string, orderTime: string): Record<string, unknown> {
  return {
    rt_cd: '0',
    msg_cd: 'APBK0013',
    msg1: '주문 전송 완료 되었습니다.',
    output: { KRX_FWDG_ORD_ORGNO: '91252', ODNO: orderNumber, ORD_TMD: orderTime },
  };
}
